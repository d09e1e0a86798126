#!/usr/bin/env python3
"""An HTTP server for overseerd on a plain `socket`, no framework.

    overseerd -l http=127.0.0.1:8080 --ready notify -- python3 examples/python/server.py

It takes the socket named `http` from LISTEN_FDS/LISTEN_FDNAMES (checking
LISTEN_PID), or binds 127.0.0.1:8080 itself when run alone; sends READY=1 to
NOTIFY_SOCKET once it accepts; and on SIGTERM or SIGINT closes its listener
(close(), never shutdown(): the socket is shared with the next generation),
finishes the requests it has and exits. accept() may raise BlockingIOError
even after select() said readable: O_NONBLOCK is shared between generations
and another one may have taken the connection.
"""
import os
import selectors
import signal
import socket
import sys
import threading

GENERATION = os.environ.get("OVERSEER_GENERATION", "0")


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


def handle(connection):
    with connection:
        connection.setblocking(True)
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 65536:
            chunk = connection.recv(4096)
            if not chunk:
                return
            request += chunk
        body = f"hello from pid {os.getpid()} generation {GENERATION}\n".encode()
        head = (f"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                f"X-Pid: {os.getpid()}\r\nX-Generation: {GENERATION}\r\nConnection: close\r\n\r\n")
        connection.sendall(head.encode() + body)


def main():
    answer_upgrade_check()
    sockets = inherited_sockets()
    if sockets:
        listener = sockets.get("http") or next(iter(sockets.values()))
    else:
        listener = socket.create_server(("127.0.0.1", 8080), backlog=4096)

    stop_read, stop_write = os.pipe()
    os.set_blocking(stop_write, False)
    signal.set_wakeup_fd(stop_write)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)  # the wakeup fd carries the signal

    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(stop_read, selectors.EVENT_READ, "stop")
    workers = []
    print(f"server.py: generation {GENERATION} serving as pid {os.getpid()}", flush=True)
    notify("READY=1")
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
            worker = threading.Thread(target=handle, args=(connection,))
            worker.start()
            workers.append(worker)
            workers = [w for w in workers if w.is_alive()]
    notify("STOPPING=1")
    selector.unregister(listener)
    listener.close()  # our fd only; never shutdown(): the next generation accepts on it
    for worker in workers:
        worker.join()
    print(f"server.py: pid {os.getpid()} stopped", flush=True)


if __name__ == "__main__":
    main()
