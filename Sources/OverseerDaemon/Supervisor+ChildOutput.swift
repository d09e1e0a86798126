extension Supervisor {
    /// Why a re-exec is refused under `--child-output capture`, nil otherwise.
    /// The read ends of the generations' output pipes are not handed over to a
    /// new image: they would close in the exec, and the program's next write
    /// would fail (EPIPE, or SIGPIPE, which ends most programs).
    var childOutputReexecRefusal: String? {
        guard childOutput != nil else { return nil }
        return "--child-output capture: the pipes that carry the program's output cannot be handed over to a new image; restart overseerd instead (systemctl restart keeps the sockets with a socket unit or the fd store)"
    }
}
