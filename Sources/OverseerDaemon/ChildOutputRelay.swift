import OverseerCore
import OverseerSystem
import SystemPackage

/// `--child-output capture`: each generation's stdout and stderr are pipes
/// whose read ends overseerd watches on its event loop. Every line read is
/// written by `ChildLineWriter`. Reads are non-blocking and bounded per
/// wake-up; while overseerd's own stream has no room, the pipes are not read
/// at all (the loop waits for room instead), so a child that writes faster
/// than the output drains is slowed by its own full pipe, never overseerd.
final class ChildOutputRelay {
    /// The longest piece of a line written; longer lines are cut (`OutputLineSplitter`).
    static let lineCap = 2048
    /// At most this much is read from one pipe per wake-up, so that others get their turn.
    static let readSize = 16384

    /// The pipes made for a generation about to be spawned.
    struct Pipes {
        let stdoutRead: FileDescriptor, stdoutWrite: FileDescriptor
        let stderrRead: FileDescriptor, stderrWrite: FileDescriptor
        /// The fds the child gets as its stdout and stderr.
        var childEnds: [Int32] { [stdoutWrite.rawValue, stderrWrite.rawValue] }
    }

    private struct Source {
        let fd: FileDescriptor
        let generation: Int
        let pid: Int32
        let stream: String
        var splitter = OutputLineSplitter(cap: ChildOutputRelay.lineCap)
        var watch: WatchToken?
    }

    private let loop: EventScheduling
    private let writer: ChildLineWriter
    private var sources: [Int: Source] = [:]
    private var nextKey = 0
    private var roomWatch: WatchToken?
    private var buffer = [UInt8](repeating: 0, count: ChildOutputRelay.readSize)

    init(loop: EventScheduling, writer: ChildLineWriter) {
        self.loop = loop
        self.writer = writer
    }

    /// Two pipes, close-on-exec, the read ends non-blocking (the spawn shim moves the write ends to fds 1 and 2).
    func makePipes() throws(SystemError) -> Pipes {
        let out = try Posix.pipe()
        do {
            let err = try Posix.pipe()
            return Pipes(stdoutRead: out.read, stdoutWrite: out.write, stderrRead: err.read, stderrWrite: err.write)
        } catch {
            Posix.close(out.read.rawValue)
            Posix.close(out.write.rawValue)
            throw error
        }
    }

    /// The generation did not start: the pipes go.
    func discard(_ pipes: Pipes) {
        for fd in [pipes.stdoutRead, pipes.stdoutWrite, pipes.stderrRead, pipes.stderrWrite] { Posix.close(fd.rawValue) }
    }

    /// The generation runs as `pid`: its ends are closed here, the read ends watched
    /// until end of file (which comes once it and whatever inherited them are gone).
    func attach(_ pipes: Pipes, generation: Int, pid: Int32) throws(SystemError) {
        Posix.close(pipes.stdoutWrite.rawValue)
        Posix.close(pipes.stderrWrite.rawValue)
        for (fd, stream) in [(pipes.stdoutRead, "stdout"), (pipes.stderrRead, "stderr")] {
            let key = nextKey
            nextKey += 1
            sources[key] = Source(fd: fd, generation: generation, pid: pid, stream: stream)
            if roomWatch == nil { try startReading(key) }
        }
    }

    /// The pipes to hand to a new image (re-exec): their read ends, and whose they are.
    var handoverRecords: [HandoverState.OutputRecord] {
        sources.keys.sorted().compactMap { key in
            sources[key].map { HandoverState.OutputRecord(fd: $0.fd.rawValue, generation: $0.generation, pid: $0.pid, stream: $0.stream) }
        }
    }

    /// Before a re-exec: a line read only in part is written now, marked unterminated;
    /// its rest comes from the new image as a line of its own.
    func flushPartialLines() {
        for key in sources.keys.sorted() {
            guard let source = sources[key], let partial = sources[key]?.splitter.finish() else { continue }
            write([partial], of: source)
        }
    }

    /// After a re-exec: the pipes the earlier image read, read on from here.
    func adopt(_ records: [HandoverState.OutputRecord]) throws(SystemError) {
        for record in records {
            let key = nextKey
            nextKey += 1
            sources[key] = Source(fd: FileDescriptor(rawValue: record.fd), generation: record.generation, pid: record.pid,
                                  stream: record.stream)
            try startReading(key)
        }
    }

    private func startReading(_ key: Int) throws(SystemError) {
        guard let source = sources[key], source.watch == nil else { return }
        sources[key]?.watch = try loop.watch(source.fd) { [unowned self] in read(key) }
    }

    private func read(_ key: Int) {
        guard sources[key] != nil else { return }
        guard LogStream.standardError.hasRoom else {
            waitForRoom()
            return
        }
        _ = readOnce(key)
    }

    /// Reads what generation `generation` left in its pipes, before its exit is
    /// logged: its last lines come before the line that says it exited. Bounded
    /// (a process it left behind may still be writing); the rest comes later.
    func drain(generation: Int) {
        for key in sources.keys.sorted() where sources[key]?.generation == generation {
            var rounds = 0
            while rounds < 64, readOnce(key) { rounds += 1 }
        }
    }

    /// One read of source `key`, its lines written; false when nothing more is
    /// there for now (EAGAIN) or the pipe is done with (end of file, an error).
    private func readOnce(_ key: Int) -> Bool {
        guard let source = sources[key] else { return false }
        let result: Posix.ReadResult
        do {
            result = try Posix.read(source.fd, into: &buffer)
        } catch {
            // EIO and the like: nothing more will come from this pipe.
            close(key)
            return false
        }
        switch result {
        case .wouldBlock:
            return false
        case let .bytes(count):
            write(sources[key]!.splitter.feed(buffer[..<count]), of: source)
            return true
        case .endOfFile:
            if let last = sources[key]?.splitter.finish() { write([last], of: source) }
            close(key)
            return false
        }
    }

    private func write(_ pieces: [OutputLineSplitter.Line], of source: Source) {
        writer.write(pieces.map { ChildLineWriter.Line(generation: source.generation, pid: source.pid, stream: source.stream, piece: $0) })
    }

    private func close(_ key: Int) {
        guard let source = sources.removeValue(forKey: key) else { return }
        if let watch = source.watch { loop.unwatch(watch) }
        Posix.close(source.fd.rawValue)
    }

    /// Stops reading every pipe until overseerd's stream has room again.
    private func waitForRoom() {
        guard roomWatch == nil, let stream = LogStream.standardError.pollable,
              let watch = try? loop.watchWritable(stream, { [unowned self] in roomCameBack() }) else { return }
        roomWatch = watch
        for key in sources.keys {
            if let watch = sources[key]?.watch { loop.unwatch(watch) }
            sources[key]?.watch = nil
        }
    }

    private func roomCameBack() {
        if let roomWatch { loop.unwatch(roomWatch) }
        roomWatch = nil
        for key in sources.keys.sorted() { try? startReading(key) }
    }
}
