/// Where the control socket lives when `--control-socket` is not given.
public enum ControlSocketPath {
    /// `$RUNTIME_DIRECTORY/overseerd.sock` under systemd's RuntimeDirectory=;
    /// else `/run/overseerd/overseerd.sock` for root, `$XDG_RUNTIME_DIR/overseerd/overseerd.sock`
    /// for other users, `/tmp/overseerd-UID/overseerd.sock` without either.
    public static func defaultPath(environment: [String: String], uid: UInt32) -> String {
        if let runtime = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first, !runtime.isEmpty {
            return "\(runtime)/overseerd.sock"
        }
        if uid == 0 { return "/run/overseerd/overseerd.sock" }
        if let xdg = environment["XDG_RUNTIME_DIR"], !xdg.isEmpty { return "\(xdg)/overseerd/overseerd.sock" }
        return "/tmp/overseerd-\(uid)/overseerd.sock"
    }
}
