#!/usr/bin/env python3
"""Socket-activate PROGRAM directly, without overseerd: a minimal systemd-socket-activate.

    launch_fd3.py HOST:PORT PROGRAM [ARGS...]

Binds a TCP listener on HOST:PORT (backlog 4096, as overseerd), puts it on fd 3, sets
LISTEN_FDS=1, LISTEN_FDNAMES=unknown and LISTEN_PID to this process's pid (execv keeps the pid,
so it is the program's pid too), then execs PROGRAM in place.

If LAUNCH_REPORT_FD names an open fd, the CLOCK_MONOTONIC time (ns) just before execv is written
to it as one line and it is closed (it is close-on-exec anyway): bench/restart-latency uses it
to time the program's own start, from exec to first answer.
"""

import os
import socket
import sys
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    host, _, port = sys.argv[1].rpartition(":")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(4096)
    if listener.fileno() != 3:
        os.dup2(listener.fileno(), 3, inheritable=True)
        listener.close()
    else:
        os.set_inheritable(3, True)
    env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_PIDFDID", "LAUNCH_REPORT_FD", "NOTIFY_SOCKET")}
    env.update(LISTEN_FDS="1", LISTEN_FDNAMES="unknown", LISTEN_PID=str(os.getpid()))
    report = os.environ.get("LAUNCH_REPORT_FD")
    program = sys.argv[2]
    if report:
        fd = int(report)
        os.write(fd, f"{time.monotonic_ns()}\n".encode())
        os.close(fd)
    os.execve(program, sys.argv[2:], env)


if __name__ == "__main__":
    main()
