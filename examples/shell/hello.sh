#!/bin/sh
# One HTTP answer per connection, inetd-style, for overseerd:
#
#   overseerd -l http=127.0.0.1:8080 -- \
#       systemd-socket-activate --inetd --accept -E OVERSEER_GENERATION \
#       env --ignore-signal=TERM examples/shell/hello.sh
#
# overseerd passes the listener as fd 3 with LISTEN_FDS/LISTEN_PID;
# systemd-socket-activate (Debian package systemd) takes it from there
# ("Received 1 descriptors via the environment"), accepts, and runs this script
# once per connection with the connection as stdin and stdout. Its parent, $PPID,
# is the process overseerd started. It sends no READY=1: use overseerd's default
# --ready delay:1s. On SIGTERM it dies and the kernel closes its fd (never a
# shutdown()), so the next generation keeps the socket.
#
# One request per connection (HTTP/1.0, Connection: close), so there is no
# keep-alive to drain; but systemd-socket-activate dies at once on SIGTERM, and
# each connection's process gets SIGTERM when it does (PR_SET_PDEATHSIG): the
# answers under way are cut at every restart (bench/zero-downtime, wrk -c32, a
# restart every 200 ms for 10 s: 573-760 read errors). `env
# --ignore-signal=TERM`, as above, lets them finish (41-63 errors left: a
# connection accepted and not yet handed on, or a process killed before env
# ignored the signal). For restarts that lose nothing, run it through
# examples/shell/serve.sh instead, which drains it (0 errors):
#
#   overseerd -l http=127.0.0.1:8080 -- examples/shell/serve.sh
#
# Not socat: socat 1.7 (Debian 12) cannot accept on an inherited listening fd
# (FD:3 treats it as a connected stream); socat 1.8 has ACCEPT-FD:3,fork.
while IFS= read -r line; do
    line=$(printf '%s' "$line" | tr -d '\r')
    [ -z "$line" ] && break
done
body="hello from pid $PPID generation ${OVERSEER_GENERATION:-0}"
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nX-Pid: %s\r\nConnection: close\r\n\r\n%s\n' \
    "$((${#body} + 1))" "$PPID" "$body"
