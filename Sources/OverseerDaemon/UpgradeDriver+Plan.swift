import OverseerCore
import OverseerFetch
import OverseerProtocol
import OverseerSystem

extension UpgradeDriver {
    /// What is checked once at start: a mistake here stops overseerd before it binds anything.
    struct Plan {
        let settings: UpgradeSettings
        /// The `--minisign-key` keys, in order.
        let keys: [Minisign.PublicKey]
        /// The first key (a binary's signature with `--fetch` and one key).
        var key: Minisign.PublicKey? { keys.first }
        let fetchHelper: String?
        let fetchUser: (uid: UInt32, gid: UInt32)?
        /// This host's id for staged rollouts (with --manifest).
        let hostID: String?
        /// Go's name for this machine, for a manifest's `{arch}`.
        let architecture = RolloutDecision.goArchitecture(machine: Posix.machine)

        init(_ settings: UpgradeSettings) throws(ConfigurationError) {
            self.settings = settings
            var keys: [Minisign.PublicKey] = []
            for keyText in settings.minisignKeys {
                var text = keyText
                if keyText.contains("/"), let contents = SmallFile.read(keyText) { text = contents }
                let key: Minisign.PublicKey
                do {
                    key = try Minisign.PublicKey(parsing: text)
                } catch {
                    throw ConfigurationError("bad --minisign-key \"\(EscapedText.escape(keyText, limit: 128))\": \(error); give the .pub file or its base64 line")
                }
                if keys.contains(where: { $0.keyID == key.keyID }) {
                    throw ConfigurationError("--minisign-key \"\(EscapedText.escape(keyText, limit: 128))\" has the key id of another --minisign-key: give each key once (--signatures-required counts distinct keys)")
                }
                if keys.contains(where: { $0.key == key.key }) {
                    throw ConfigurationError("--minisign-key \"\(EscapedText.escape(keyText, limit: 128))\" is another --minisign-key under another key id (a key id is not signed): give each key once (--signatures-required counts distinct keys)")
                }
                keys.append(key)
            }
            self.keys = keys
            if case .network = settings.source {
                let candidates = [settings.fetchHelperPath, ProcFS.besideOwnExecutable("overseerd-fetch"),
                                  "/usr/libexec/overseerd/overseerd-fetch"].compactMap { $0 }
                guard let found = candidates.first(where: Posix.isExecutable) else {
                    throw ConfigurationError("overseerd-fetch not found (looked at \(candidates.joined(separator: ", "))); install it or give --fetch-helper PATH")
                }
                fetchHelper = found
            } else {
                fetchHelper = nil
            }
            if settings.manifest {
                let id = settings.hostID ?? SmallFile.read("/etc/machine-id").map {
                    String($0.filter { !$0.isWhitespace })
                }
                guard let id, !id.isEmpty else {
                    throw ConfigurationError("no host id for staged rollouts: /etc/machine-id is missing or empty; give --host-id ID")
                }
                hostID = id
            } else {
                hostID = nil
            }
            if let user = settings.fetchUser {
                guard let entry = Posix.user(named: user) else {
                    throw ConfigurationError("bad --fetch-user \"\(user)\": no such user")
                }
                fetchUser = entry
            } else {
                fetchUser = nil
            }
        }
    }
}
