import Glibc

/// Signal names as people write them (`USR2`, `SIGUSR2`, `12`) and back.
public enum SignalNumber {
    static let table: [(String, Int32)] = [
        ("HUP", SIGHUP), ("INT", SIGINT), ("QUIT", SIGQUIT), ("ILL", SIGILL), ("TRAP", SIGTRAP),
        ("ABRT", SIGABRT), ("BUS", SIGBUS), ("FPE", SIGFPE), ("KILL", SIGKILL), ("USR1", SIGUSR1),
        ("SEGV", SIGSEGV), ("USR2", SIGUSR2), ("PIPE", SIGPIPE), ("ALRM", SIGALRM), ("TERM", SIGTERM),
        ("STKFLT", SIGSTKFLT), ("CHLD", SIGCHLD), ("CONT", SIGCONT), ("STOP", SIGSTOP), ("TSTP", SIGTSTP),
        ("TTIN", SIGTTIN), ("TTOU", SIGTTOU), ("URG", SIGURG), ("XCPU", SIGXCPU), ("XFSZ", SIGXFSZ),
        ("VTALRM", SIGVTALRM), ("PROF", SIGPROF), ("WINCH", SIGWINCH), ("IO", SIGIO), ("PWR", SIGPWR),
        ("SYS", SIGSYS),
    ]

    /// Parses a signal name with or without `SIG`, any case, or its number (`SIG38` too, as `name` writes it).
    public static func parse(_ text: String) throws(ConfigurationError) -> Int32 {
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name = String(name.dropFirst(3)) }
        if let entry = table.first(where: { $0.0 == name }) { return entry.1 }
        if let number = Int32(name), number > 0, number < 65 { return number }
        throw ConfigurationError("bad signal \"\(text)\": write a name such as TERM, HUP or USR2")
    }

    /// `SIGTERM`, or `SIG38` for one without a name.
    public static func name(_ signal: Int32) -> String {
        if let entry = table.first(where: { $0.1 == signal }) { return "SIG\(entry.0)" }
        return "SIG\(signal)"
    }

    /// The signals that ask overseerd to shut down; they go to every generation.
    public static let stopping: Set<Int32> = [SIGTERM, SIGINT, SIGQUIT]
}
