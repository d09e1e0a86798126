import Glibc
import OverseerProtocol

extension OverseerChild {
    /// If this run is overseerd's check of a new binary (OVERSEER_CHECK_TOKEN is
    /// set), prints the token and a newline on stdout and exits 0; otherwise
    /// returns at once.
    ///
    /// Call it first in `main`, before opening, binding or reading anything:
    /// the check runs the new binary beside the serving one, with no sockets,
    /// only to prove that it starts.
    public static func answerUpgradeCheckIfAsked() {
        guard let token = getenv(EnvironmentName.checkToken) else { return }
        let bytes = Array((String(cString: token) + "\n").utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if count > 0 {
                written += count
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                exit(1)
            }
        }
        exit(0)
    }
}
