"""A WSGI app for examples/python/gunicorn.conf.py: says which gunicorn master answered."""
import os


def app(environ, start_response):
    generation = os.environ.get("OVERSEER_GENERATION", "0")
    body = f"hello from gunicorn master {os.getppid()} worker {os.getpid()} generation {generation}\n".encode()
    start_response("200 OK", [
        ("Content-Type", "text/plain"),
        ("Content-Length", str(len(body))),
        ("X-Pid", str(os.getppid())),  # the master: the process overseerd started
        ("X-Generation", generation),
    ])
    return [body]
