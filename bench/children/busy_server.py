#!/usr/bin/env python3
"""examples/python/server.py with some CPU work per request, for bench/workers.

A "hello" answer costs Python less than wrk spends asking for it, and wrk shares
the machine's cores with the server: the server would not be what limits the
rate. WORK_US (default 300) microseconds of pure-Python work per request, as an
application's own code would take, make it so. Everything else is server.py's:
the socket it takes from overseerd, READY=1, the drain.
"""
import os
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python"))
import server  # noqa: E402

WORK = int(os.environ.get("WORK_US", "300")) / 1e6
plain_answer = server.answer


def busy_answer(close):
    until = time.perf_counter() + WORK
    total = 0
    while time.perf_counter() < until:
        total += sum(range(50))
    return plain_answer(close)


server.answer = busy_answer

if __name__ == "__main__":
    server.main()
