#!/bin/sh
# Runs examples/shell/hello.sh once per connection under systemd-socket-activate,
# and stops without cutting an answer short:
#
#   overseerd -l http=127.0.0.1:8080 -- examples/shell/serve.sh
#
# systemd-socket-activate dies at once on SIGTERM, and each connection's process
# gets SIGTERM when it does (PR_SET_PDEATHSIG): the answers under way are lost.
# So it runs as a child of this script, which on SIGTERM (or SIGINT) freezes it
# with SIGSTOP (it accepts nothing more; the next generation takes the queued
# connections from the shared socket), waits until every connection's process
# has answered and exited, and only then kills it.
#
# LISTEN_PID must be the pid of the process that takes the socket: the inner sh
# sets it to its own pid ($$) and execs systemd-socket-activate, which keeps it.
# (hello.sh's X-Pid, its $PPID, is then the activator's pid, not this script's.)
#
# Stopping: the activator may have accepted a connection and not yet handed it
# to a process when it is frozen; it is let run on until it has. Measured with
# bench/zero-downtime (wrk -c32, a restart every 200 ms for 10 s): 0 errors,
# where running systemd-socket-activate straight under overseerd lost 41-760
# requests per run (see hello.sh).
here=$(dirname "$0")
stopping=
trap 'stopping=1' TERM INT
sh -c 'LISTEN_PID=$$ exec systemd-socket-activate --inetd --accept -E OVERSEER_GENERATION "$0"' "$here/hello.sh" &
activator=$!
exec 3>&- # our copy of the listener: only the activator needs it
while :; do
    wait "$activator"
    status=$?
    [ -n "$stopping" ] && break
    kill -0 "$activator" 2>/dev/null || exit "$status" # it ended by itself
done
state() { cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null; } # R, S, T, Z, ...; empty when gone
freeze() {
    kill -STOP "$activator"
    # kill returns before the signal is acted on: wait until it is stopped for real.
    while :; do
        case $(state "$activator") in R | S | D) sleep 0.001 ;; *) break ;; esac
    done
}
# A connection it accepted and had not handed to a process yet when it stopped
# (a socket besides the listener, fd 3): let it run on until it has.
stranded() {
    for fd in "/proc/$activator/fd/"*; do
        case ${fd##*/} in 0 | 1 | 2 | 3) continue ;; esac
        case $(readlink "$fd" 2>/dev/null) in socket:*) return 0 ;; esac
    done
    return 1
}
freeze
while stranded; do
    kill -CONT "$activator"
    sleep 0.001
    freeze
done
# Each live child of the activator is one connection's answer under way (a
# stopped activator cannot reap the finished ones: zombies do not count).
answering() {
    for child in $(cat "/proc/$activator/task/$activator/children" 2>/dev/null); do
        case $(state "$child") in "" | Z) ;; *) return 0 ;; esac
    done
    return 1
}
while answering; do
    sleep 0.01
done
kill -KILL "$activator"
wait "$activator" 2>/dev/null
exit 0
