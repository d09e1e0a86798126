import OverseerSystem

/// Writes one small state file (`PrivateStateFile`: atomic rename, fsync) off
/// the event loop, one write at a time, the newest text winning: a full or slow
/// disk never holds up the loop, and a burst of changes costs one write or two.
/// `ended` hears of each write that ended (or never started), with why it failed.
final class StateFileWriter {
    /// Runs its first closure on a thread of its own and hands the result to the second on the loop.
    typealias Background = (@escaping @Sendable () -> String?, @escaping (String?) -> Void) throws(SystemError) -> Void

    let file: PrivateStateFile
    private let background: Background
    private var written: String?
    private var writing = false
    private var next: String?
    private var waiting: [(String?) -> Void] = []
    /// Why the last write failed; nil once one succeeds.
    private(set) var lastFailure: String?
    /// After each write: the text and nil, or why it failed; `isBusy` says whether another follows.
    var ended: (String, String?) -> Void = { _, _ in }

    init(file: PrivateStateFile, background: @escaping Background) {
        self.file = file
        self.background = background
    }

    /// A write is under way or queued.
    var isBusy: Bool { writing || next != nil }

    /// What the file holds already (read at start): saving it again writes nothing.
    func holds(_ text: String?) { written = text }

    /// Writes `text` soon, unless it is what is on disk or queued already.
    func save(_ text: String) {
        guard text != (next ?? (writing ? nil : written)) else { return }
        next = text
        writeNext()
    }

    /// Runs `work` once everything saved so far is on disk, with nil, or with
    /// why it could not be written (at once when nothing is under way).
    func whenWritten(_ work: @escaping (String?) -> Void) {
        if isBusy { waiting.append(work) } else { work(lastFailure) }
    }

    /// At exit: what is still queued is written on the loop's thread (a few hundred bytes).
    func flush() {
        guard let text = next else { return }
        next = nil
        try? file.write(text)
    }

    private func writeNext() {
        guard !writing, let text = next else { return }
        next = nil
        writing = true
        let file = file
        do {
            try background({ () -> String? in
                do {
                    try file.write(text)
                    return nil
                } catch {
                    return "\(error)"
                }
            }, { [unowned self] failure in finished(text, failure: failure) })
        } catch {
            finished(text, failure: "cannot start writing it: \(error)")
        }
    }

    private func finished(_ text: String, failure: String?) {
        writing = false
        lastFailure = failure
        if failure == nil { written = text }
        ended(text, failure)
        writeNext()
        guard !isBusy else { return }
        let ready = waiting
        waiting = []
        for work in ready { work(lastFailure) }
    }
}
