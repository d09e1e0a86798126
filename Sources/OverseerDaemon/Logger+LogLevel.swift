import Logging
import OverseerCore

extension Logger {
    /// Logs a line a pure machine asked for, at the level it chose.
    func log(_ level: Supervision.LogLevel, _ message: String) {
        switch level {
        case .debug: debug("\(message)")
        case .info: info("\(message)")
        case .notice: notice("\(message)")
        case .warning: warning("\(message)")
        case .error: error("\(message)")
        }
    }
}
