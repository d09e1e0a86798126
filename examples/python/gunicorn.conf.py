# gunicorn under overseerd:
#
#   overseerd -l http=127.0.0.1:8000 --ready notify -- \
#       gunicorn --config examples/python/gunicorn.conf.py --chdir examples/python app:app
#
# (add `--worker-class gthread --keep-alive 5` for keep-alive connections).
#
# gunicorn reads LISTEN_FDS/LISTEN_PID itself and serves on those sockets
# instead of binding (no `bind` here; run alone, it binds 127.0.0.1:8000), and
# sends READY=1 to NOTIFY_SOCKET once its workers run. On SIGTERM the master
# closes its listeners, lets the workers finish their requests within
# graceful_timeout, and exits.

# gunicorn calls listen() on the sockets it is given, with this backlog: keep
# overseerd's (--backlog, 4096 by default), or the queue shrinks for every generation.
backlog = 4096
workers = 2
# Below overseerd's --stop-timeout (30s), after which it sends SIGKILL.
graceful_timeout = 20
# Don't send gunicorn USR2 (its own binary upgrade): overseerd uses USR2 for its restarts.

# Keep-alive (gthread workers, `--worker-class gthread --keep-alive 5`): on
# SIGTERM gunicorn's gthread worker stops its loop at once and its idle
# keep-alive connections are closed when it exits, also one whose client has
# just sent its next request there: that client reads EOF instead of an answer
# (bench/zero-downtime, wrk -c32: 55 read errors in 10 restarts). The hook
# below makes a gthread worker drain them instead (0 errors):
#   1. on SIGTERM it stops accepting (closes its copy of the listener);
#   2. every request that arrives on a connection it has is answered with
#      `Connection: close` (keepalive set to 0 for this worker), and that
#      connection is closed after the answer;
#   3. once no connection is left, or after drain_grace seconds, the worker
#      ends as usual: requests in flight get graceful_timeout, idle connections
#      are closed.
# Sync workers need nothing: they answer every request with Connection: close.
drain_grace = 1.0


def post_worker_init(worker):
    from gunicorn.workers.gthread import ThreadWorker  # gunicorn 20.x

    if not isinstance(worker, ThreadWorker):
        return
    import os
    import selectors
    import signal
    import threading
    import time

    state = {"stop": False, "until": None}

    def on_term(_signo, _frame):
        # Only a flag here: the loop below (murder_keepalived runs once per
        # iteration of the worker's loop) does the work, between its own steps.
        state["stop"] = True

    def wake(fd):
        try:
            os.read(fd, 4096)
        except BlockingIOError:
            pass

    # Requests handed to the worker's threads whose connection is not yet back
    # in the keep-alive set or closed (finish_request runs after the future is
    # done: the worker's own counters would say "drained" too early, and a
    # connection just answered with keep-alive would then be closed at exit).
    lock = threading.Lock()
    pending = [0]
    enqueue, finish = worker.enqueue_req, worker.finish_request

    def enqueue_req(conn):
        with lock:
            pending[0] += 1
        enqueue(conn)

    def finish_request(future):
        try:
            finish(future)
        finally:
            with lock:
                pending[0] -= 1
            if state["until"] is not None:  # draining: let the loop see it now, not after select()'s 1 s
                try:
                    os.write(worker.PIPE[1], b".")
                except BlockingIOError:
                    pass

    def drained():
        with lock, worker._lock:
            return pending[0] == 0 and not worker._keep

    ending_idle = worker.murder_keepalived

    def murder_keepalived():
        if state["stop"] and state["until"] is None:
            state["until"] = time.monotonic() + drain_grace
            worker.cfg.set("keepalive", 0)  # every answer from now on closes its connection
            for listener in worker.sockets:
                worker.poller.unregister(listener)
                listener.close()  # close(), never shutdown(): the socket is shared
        if state["until"] is None:
            ending_idle()  # keep-alive timeouts, as usual
        elif drained() or time.monotonic() >= state["until"]:
            worker.alive = False
        # While draining, no keep-alive timeout: with keepalive 0 a connection
        # that got its keep-alive answer just before the stop would be closed
        # under its next request; it gets that request answered instead.

    worker.enqueue_req = enqueue_req
    worker.finish_request = finish_request
    worker.murder_keepalived = murder_keepalived
    signal.signal(signal.SIGTERM, on_term)
    signal.siginterrupt(signal.SIGTERM, False)
    # The worker's signal wakeup pipe, so that SIGTERM ends the wait in select() at once.
    worker.poller.register(worker.PIPE[0], selectors.EVENT_READ, wake)
