/// What becomes of a generation's stdout and stderr (`--child-output`).
public enum ChildOutputMode: String, CaseIterable, Sendable {
    /// The child writes to overseerd's own stdout and stderr (no cost, no tagging).
    case inherit
    /// overseerd reads each generation's stdout and stderr through pipes and
    /// writes every line itself, tagged with the generation, pid and stream,
    /// in its own log format.
    case capture

    /// `--child-output VALUE` as written.
    public init(parsing text: String) throws(ConfigurationError) {
        guard let mode = ChildOutputMode(rawValue: text.lowercased()) else {
            throw ConfigurationError("bad --child-output \"\(text)\": write inherit or capture")
        }
        self = mode
    }
}
