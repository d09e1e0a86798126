#!/usr/bin/env python3
"""An HTTP/1.1 keep-alive server for overseerd's benchmarks, on an inherited listening socket.

It takes fd 3 the systemd way (LISTEN_FDS >= 1 and LISTEN_PID = its own pid), answers every
request with 200, `X-Pid` and `X-Generation` (OVERSEER_GENERATION), keeps connections open
(HTTP/1.1 keep-alive, pipelining tolerated), and sends READY=1 to NOTIFY_SOCKET once it serves.

Graceful drain on SIGTERM (also SIGINT, SIGQUIT):
  1. close() its listening fd. Never shutdown(): the socket's file description is shared with
     overseerd and every other generation, and shutdown() would stop it for all of them.
     Connections still in the accept queue stay there for the next generation.
  2. Every open connection: the request in flight, or the next request that arrives, is answered
     with `Connection: close`, after which the connection is closed (write side shut down first,
     then a short wait for the client's EOF, so that nothing unread turns the close into a reset).
  3. A connection with no request under way that gets none within KA_IDLE_GRACE seconds
     (default 1) is closed; a request that has started gets KA_REQUEST_GRACE (default 10).
  4. It exits when no connection is left.

One thread, one selector (epoll). O_NONBLOCK is a flag of the shared file description (whoever
sets it sets it for every generation), so accept() may fail with EAGAIN when another generation
took the connection first: that is expected and ignored.

Environment: KA_IDLE_GRACE, KA_REQUEST_GRACE, KA_LINGER (seconds to wait for the client's EOF
after the last answer, default 0.5), KA_QUIET=1 (no lines on stderr).
"""

import errno
import os
import re
import selectors
import signal
import socket
import sys
import time

IDLE_GRACE = float(os.environ.get("KA_IDLE_GRACE", "1"))
REQUEST_GRACE = float(os.environ.get("KA_REQUEST_GRACE", "10"))
LINGER = float(os.environ.get("KA_LINGER", "0.5"))
QUIET = os.environ.get("KA_QUIET") == "1"
PID = os.getpid()
GENERATION = os.environ.get("OVERSEER_GENERATION", "0")
MAX_HEAD = 64 * 1024

CONNECTION_HEADER = re.compile(rb"\r\nconnection:[ \t]*([^\r]*)")
LENGTH_HEADER = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")


def say(message):
    if not QUIET:
        os.write(2, f"keepalive_server[{PID}] generation {GENERATION}: {message}\n".encode())


def response(close, status="200 OK"):
    body = f"hello from pid {PID} generation {GENERATION}\n".encode()
    head = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"X-Pid: {PID}\r\nX-Generation: {GENERATION}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()
    return head + body


KEEP = response(close=False)
CLOSE = response(close=True)
BAD = response(close=True, status="400 Bad Request")


def inherited_listener():
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
        owner = int(os.environ.get("LISTEN_PID", "0"))
    except ValueError:
        count, owner = 0, 0
    if count < 1 or owner != PID:
        sys.exit(f"keepalive_server: no socket passed (LISTEN_FDS={os.environ.get('LISTEN_FDS')}, "
                 f"LISTEN_PID={os.environ.get('LISTEN_PID')}, pid {PID}): run it under overseerd "
                 f"or systemd-socket-activate")
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_PIDFDID"):
        os.environ.pop(name, None)
    listener = socket.socket(fileno=3)
    # Sets O_NONBLOCK on the shared description (see above); accept() must then tolerate EAGAIN.
    listener.setblocking(False)
    return listener


def notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.sendto(message.encode(), address)
        except OSError as error:
            say(f"cannot notify {os.environ.get('NOTIFY_SOCKET')}: {error}")


class Connection:
    __slots__ = ("sock", "inbuf", "outbuf", "close_after", "lingering", "deadline", "events")

    def __init__(self, sock):
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.close_after = False  # answer sent with Connection: close: shut down once written
        self.lingering = False  # write side shut down, waiting for the client's EOF
        self.deadline = None
        self.events = selectors.EVENT_READ


class Server:
    def __init__(self, listener):
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.connections = {}
        self.draining = False
        self.stop_requested = False
        self.requests = 0
        self.accepted = 0
        self.idle_closed = 0
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        self.wake_read = wake_read
        self.wake_write = wake_write  # kept open for the process's life
        signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        self.selector.register(wake_read, selectors.EVENT_READ, "wake")
        for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signo, self.on_stop_signal)

    def on_stop_signal(self, _signo, _frame):
        self.stop_requested = True

    # ------------------------------------------------------------ events

    def run(self):
        notify("READY=1\nSTATUS=serving")
        while True:
            if self.stop_requested and not self.draining:
                self.start_drain()
            if self.draining and not self.connections:
                say(f"drained; exiting after {self.requests} requests on {self.accepted} connections "
                    f"({self.idle_closed} idle ones closed)")
                return
            timeout = self.next_timeout()
            for key, mask in self.selector.select(timeout):
                if key.data is None:
                    self.accept()
                elif key.data == "wake":
                    try:
                        while self.wake_read.recv(512):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                else:
                    connection = key.data
                    if mask & selectors.EVENT_WRITE:
                        self.flush(connection)
                    if mask & selectors.EVENT_READ and connection.sock.fileno() >= 0:
                        self.readable(connection)
            self.expire()

    def next_timeout(self):
        deadlines = [c.deadline for c in self.connections.values() if c.deadline is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def accept(self):
        for _ in range(64):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return  # another generation took it, or nothing left
            except OSError as error:
                if error.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    say(f"accept: {error}")
                    return
                raise
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(sock)
            self.connections[sock.fileno()] = connection
            self.selector.register(sock, selectors.EVENT_READ, connection)
            self.accepted += 1
            if self.draining:  # accepted in the same round as the stop signal
                connection.deadline = time.monotonic() + IDLE_GRACE

    def readable(self, connection):
        try:
            data = connection.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(connection)
            return
        if not data:
            self.close(connection)  # the client is done (or, lingering, acknowledged our close)
            return
        if connection.lingering or connection.close_after:
            return  # nothing more will be answered on this one
        connection.inbuf += data
        self.handle_requests(connection)

    def handle_requests(self, connection):
        buffer = connection.inbuf
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self.answer(connection, BAD, close=True)
                elif buffer and self.draining:
                    connection.deadline = time.monotonic() + REQUEST_GRACE  # a request is under way
                return
            head = bytes(buffer[:end]).lower()
            length = LENGTH_HEADER.search(head)
            total = end + 4 + (int(length.group(1)) if length else 0)
            if len(buffer) < total:
                if self.draining:
                    connection.deadline = time.monotonic() + REQUEST_GRACE
                return
            del buffer[:total]
            self.requests += 1
            header = CONNECTION_HEADER.search(head)
            wants_close = bool(header and b"close" in header.group(1)) or \
                (head.split(b"\r\n", 1)[0].endswith(b"http/1.0") and not (header and b"keep-alive" in header.group(1)))
            if wants_close or self.draining:
                self.answer(connection, CLOSE, close=True)
                return
            self.answer(connection, KEEP, close=False)

    def answer(self, connection, data, close):
        connection.outbuf += data
        connection.deadline = None
        if close:
            connection.close_after = True
            connection.inbuf.clear()
        self.flush(connection)

    def flush(self, connection):
        while connection.outbuf:
            try:
                sent = connection.sock.send(connection.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close(connection)
                return
            del connection.outbuf[:sent]
        if connection.outbuf:
            self.want(connection, selectors.EVENT_READ | selectors.EVENT_WRITE)
            return
        self.want(connection, selectors.EVENT_READ)
        if connection.close_after and not connection.lingering:
            connection.lingering = True
            try:
                connection.sock.shutdown(socket.SHUT_WR)  # this connection only, not the listener
            except OSError:
                self.close(connection)
                return
            connection.deadline = time.monotonic() + LINGER
        elif self.draining and not connection.close_after and not connection.inbuf:
            connection.deadline = time.monotonic() + IDLE_GRACE

    def want(self, connection, events):
        if connection.events != events:
            connection.events = events
            self.selector.modify(connection.sock, events, connection)

    def start_drain(self):
        self.draining = True
        self.selector.unregister(self.listener)
        self.listener.close()  # close(), never shutdown(): the socket is shared
        now = time.monotonic()
        busy = 0
        for connection in list(self.connections.values()):
            if connection.close_after or connection.lingering:
                continue
            if connection.inbuf or connection.outbuf:
                busy += 1
                connection.deadline = now + REQUEST_GRACE
            else:
                connection.deadline = now + IDLE_GRACE
        say(f"stop signal: listener closed; draining {len(self.connections)} connections ({busy} mid-request)")

    def expire(self):
        now = time.monotonic()
        for connection in list(self.connections.values()):
            if connection.deadline is not None and connection.deadline <= now:
                if self.draining and not connection.lingering and not connection.close_after:
                    self.idle_closed += 1
                self.close(connection)

    def close(self, connection):
        sock = connection.sock
        if sock.fileno() < 0:
            return
        self.connections.pop(sock.fileno(), None)
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()


def main():
    listener = inherited_listener()
    server = Server(listener)
    say(f"serving on {listener.getsockname()[0]}:{listener.getsockname()[1]}")
    server.run()


if __name__ == "__main__":
    main()
