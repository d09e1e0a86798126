# gunicorn under overseerd:
#
#   overseerd -l http=127.0.0.1:8000 --ready notify -- \
#       gunicorn --config examples/python/gunicorn.conf.py --chdir examples/python app:app
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
