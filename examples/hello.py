#!/usr/bin/env python3
"""A tiny HTTP server for overseerd's demo: it serves on the socket overseerd
hands it (fd 3, systemd socket activation) and says which process answered."""
import http.server
import os
import signal
import socket
import sys
import threading

listen_fds = int(os.environ.get("LISTEN_FDS", "0"))
if listen_fds < 1 or os.environ.get("LISTEN_PID") != str(os.getpid()):
    sys.exit("hello.py: no socket passed; run it under overseerd, e.g. overseerd -l 127.0.0.1:8080 -- python3 examples/hello.py")

GENERATION = os.environ.get("OVERSEER_GENERATION", "?")
stopping = threading.Event()


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An idle keep-alive connection must not hold up a stop for long.
    timeout = 5

    def do_GET(self):
        body = f"hello from pid {os.getpid()}, generation {GENERATION}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Pid", str(os.getpid()))
        if stopping.is_set() or self.close_connection:
            # Draining, or the client asked for it (Connection: close, HTTP/1.0):
            # this connection ends with this answer, and the answer says so
            # (RFC 9112 9.6; a client that is not told may send its next request
            # into the closed connection).
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # Not daemon threads: server_close() waits for the requests in flight
    # (daemon threads would be cut off mid-answer when the program exits).
    daemon_threads = False

    def server_bind(self):
        pass  # already bound by overseerd

    def server_activate(self):
        pass  # already listening


server = Server(("", 0), Hello, bind_and_activate=False)
server.socket.close()
server.socket = socket.socket(fileno=3)


def stop(signum, frame):
    # Stop accepting (serve_forever returns), then close our copy of the shared
    # listener (never shutdown()) and let in-flight requests finish.
    stopping.set()
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
print(f"hello.py: generation {GENERATION} serving as pid {os.getpid()}", flush=True)
server.serve_forever()
server.server_close()  # closes our copy of the listener, then joins the request threads
