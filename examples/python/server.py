#!/usr/bin/env python3
"""An HTTP server for overseerd on a plain `socket`, no framework.

    overseerd -l http=127.0.0.1:8080 --ready notify -- python3 examples/python/server.py

It takes the socket named `http` from LISTEN_FDS/LISTEN_FDNAMES (checking
LISTEN_PID), or binds 127.0.0.1:8080 itself when run alone; sends READY=1 to
NOTIFY_SOCKET once it accepts; and serves HTTP/1.1 with keep-alive, one thread
per connection. accept() may raise BlockingIOError even after select() said
readable: O_NONBLOCK is shared between generations and another one may have
taken the connection.

On SIGTERM or SIGINT it drains without failing a keep-alive client:
  1. it closes its listener (close(), never shutdown(): the socket is shared
     with the next generation, which accepts what is still queued);
  2. it answers every request that arrives on the connections it has with
     `Connection: close` and closes each after that answer;
  3. after IDLE_GRACE it ends the connections still idle, waits for the
     requests in flight, and exits.
Closing an idle keep-alive connection at once would fail a client that has
just sent its next request on it: it would read EOF instead of an answer.
"""
import os
import selectors
import signal
import socket
import sys
import threading

GENERATION = os.environ.get("OVERSEER_GENERATION", "0")
IDLE_GRACE = 1.0  # seconds idle connections stay open after the stop signal
KEEP_ALIVE = 5.0  # seconds an idle connection stays open while serving
MAX_HEAD = 65536

stopping = threading.Event()
lock = threading.Condition()
idle = set()  # connections waiting for their next request (under lock)
open_connections = 0  # connections open (under lock)


def answer_upgrade_check():
    """overseerd's upgrade check runs a new binary with OVERSEER_CHECK_TOKEN: echo it, exit 0."""
    token = os.environ.get("OVERSEER_CHECK_TOKEN")
    if token is not None:
        print(token, flush=True)
        sys.exit(0)


def inherited_sockets():
    """{name: socket} for the sockets passed to this process; empty when none were."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return {}
    count = int(os.environ.get("LISTEN_FDS", "0"))
    names = os.environ.get("LISTEN_FDNAMES")
    names = names.split(":") if names is not None else ["unknown"] * count
    if len(names) != count:
        sys.exit(f"server.py: LISTEN_FDNAMES has {len(names)} names for {count} fds")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID"):
        os.environ.pop(name, None)
    return {(names[i] or "unknown"): socket.socket(fileno=3 + i) for i in range(count)}


def notify(message):
    """sd_notify(3), written out: one datagram to NOTIFY_SOCKET (a path, or @name)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(message.encode(), address)


def next_request(connection, buffered):
    """(head, rest) of the next request; head is None when the connection ends
    (EOF, reset, KEEP_ALIVE without a request, or ended by the drain)."""
    while b"\r\n\r\n" not in buffered:
        if len(buffered) > MAX_HEAD:
            return None, b""
        if not buffered:
            with lock:
                idle.add(connection)
        try:
            chunk = connection.recv(4096)
        except OSError:  # timeout or reset
            chunk = b""
        finally:
            with lock:
                idle.discard(connection)
        if not chunk:
            return None, b""
        buffered += chunk
    head, _, rest = buffered.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), rest  # GET only: no body to skip


def answer(close):
    body = f"hello from pid {os.getpid()} generation {GENERATION}\n".encode()
    return (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"X-Pid: {os.getpid()}\r\nX-Generation: {GENERATION}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


def handle(connection):
    global open_connections
    try:
        connection.setblocking(True)
        connection.settimeout(KEEP_ALIVE)
        buffered = b""
        while True:
            head, buffered = next_request(connection, buffered)
            if head is None:
                return
            version = head.split("\r\n", 1)[0].rsplit(" ", 1)[-1]
            header = next((line.split(":", 1)[1].strip() for line in head.split("\r\n")[1:]
                           if line.startswith("connection:")), "")
            close = stopping.is_set() or "close" in header or (version == "http/1.0" and "keep-alive" not in header)
            connection.sendall(answer(close))
            if close:
                # Our FIN first, then wait for the client's: closing with unread
                # bytes from it would send a reset instead.
                connection.shutdown(socket.SHUT_WR)
                connection.settimeout(1.0)
                while connection.recv(4096):
                    pass
                return
    except OSError:
        pass
    finally:
        connection.close()
        with lock:
            open_connections -= 1
            lock.notify_all()


def main():
    answer_upgrade_check()
    sockets = inherited_sockets()
    if sockets:
        listener = sockets.get("http") or next(iter(sockets.values()))
    else:
        listener = socket.create_server(("127.0.0.1", 8080), backlog=4096)
    # Non-blocking: with several processes on the socket (a restart, or --workers N),
    # another one may take the connection select() announced, and a blocking
    # accept() would then sleep until the next one, deaf to SIGTERM.
    listener.setblocking(False)

    stop_read, stop_write = os.pipe()
    os.set_blocking(stop_write, False)
    signal.set_wakeup_fd(stop_write)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)  # the wakeup fd carries the signal

    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(stop_read, selectors.EVENT_READ, "stop")
    print(f"server.py: generation {GENERATION} serving as pid {os.getpid()}", flush=True)
    notify("READY=1")
    global open_connections
    running = True
    while running:
        for key, _ in selector.select():
            if key.data == "stop":
                running = False
                break
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue  # another generation took it, or the client gave up
            with lock:
                open_connections += 1
            threading.Thread(target=handle, args=(connection,)).start()
    notify("STOPPING=1")
    selector.unregister(listener)
    listener.close()  # our fd only; never shutdown(): the next generation accepts on it
    stopping.set()  # from now on every answer closes its connection
    with lock:
        lock.wait_for(lambda: open_connections == 0, timeout=IDLE_GRACE)
        # Still idle after the grace: end them. shutdown(SHUT_RD) of the connection
        # (not the listener) wakes its thread with EOF and lets an answer already
        # under way still be written.
        for connection in idle:
            try:
                connection.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        lock.wait_for(lambda: open_connections == 0)
    print(f"server.py: pid {os.getpid()} stopped", flush=True)

if __name__ == "__main__":
    main()
