/// The names of the environment variables that make up the contract between
/// overseerd, its child and systemd.
public enum EnvironmentName {
    /// Number of inherited sockets, starting at fd 3 (sd_listen_fds(3)).
    public static let listenFDs = "LISTEN_FDS"
    /// The pid the inherited sockets are meant for.
    public static let listenPID = "LISTEN_PID"
    /// Colon-separated names of the inherited sockets.
    public static let listenFDNames = "LISTEN_FDNAMES"
    /// Set by systemd ≥ 254 beside LISTEN_PID; cleared when sockets are passed on.
    public static let listenPIDFDID = "LISTEN_PIDFDID"
    /// Where sd_notify(3) messages go.
    public static let notifySocket = "NOTIFY_SOCKET"
    /// The watchdog interval systemd expects pings at, in µs.
    public static let watchdogUSec = "WATCHDOG_USEC"
    /// The pid the watchdog interval is meant for.
    public static let watchdogPID = "WATCHDOG_PID"

    /// The path of the program overseerd started.
    public static let binaryPath = "OVERSEER_BINARY_PATH"
    /// The SHA-256 (lower-case hex) of the program overseerd started.
    public static let binaryID = "OVERSEER_BINARY_ID"
    /// 1 for the first child, one more for each restart.
    public static let generation = "OVERSEER_GENERATION"
    /// With `--workers N`: this worker's number, 0 to N-1 (its slot: a replacement gets the same number).
    public static let worker = "OVERSEER_WORKER"
    /// With `--workers N`: N.
    public static let workers = "OVERSEER_WORKERS"
    /// Set only when the program is run to prove it can start: print it back and exit 0.
    public static let checkToken = "OVERSEER_CHECK_TOKEN"

    /// Variables systemd sets for overseerd itself; the child never inherits them.
    public static let systemdOwn: Set<String> = [
        listenFDs, listenPID, listenFDNames, listenPIDFDID, notifySocket, watchdogUSec, watchdogPID,
    ]
}
