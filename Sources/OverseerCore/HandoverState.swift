/// What one overseerd image hands the next when it re-executes itself (a
/// package upgrade of overseerd): the listeners, the serving child and the fds
/// that follow it, so that neither the sockets nor the child are touched.
///
/// Written as text, one record a line, fields separated by tabs with `%`, tab
/// and newline escaped, into a memfd whose number the new image finds in
/// OVERSEERD_STATE_FD.
public struct HandoverState: Equatable, Sendable {
    public static let environmentVariable = "OVERSEERD_STATE_FD"
    /// Given first, makes an overseerd image only check the rest of its command
    /// line and exit 0 if it would run with it: asked of the new image before a re-exec.
    public static let checkConfigurationFlag = "--check-configuration"
    static let version = "1"

    /// What `--check-configuration` prints on success. Its `(takes over: metrics, output)`
    /// tells the running image that the new one reads the `metrics` and `output`
    /// records: an image from before them would refuse the whole state, and the
    /// child would go with it.
    public static func checkConfigurationAnswer(version: String) -> String {
        "overseerd \(version): the command line is valid (takes over: metrics, output, binary-life, udp-flows, workers)"
    }

    /// Whether the image that gave `answer` reads the `binary-life` record (the
    /// trial, the last good binary); an older one gets only the rejected hashes.
    public static func takesOverBinaryLife(checkAnswer answer: String) -> Bool {
        takenOver(checkAnswer: answer).contains("binary-life")
    }

    /// Whether the image that gave `answer` takes over steered UDP listeners (their
    /// program, maps and spare socket): an older one would refuse the whole state.
    public static func takesOverUDPFlows(checkAnswer answer: String) -> Bool {
        takenOver(checkAnswer: answer).contains("udp-flows")
    }

    /// Whether the image that gave `answer` takes over the workers of `--workers N`
    /// (N > 1): an older one would refuse the whole state, and every worker would go with it.
    public static func takesOverWorkers(checkAnswer answer: String) -> Bool {
        takenOver(checkAnswer: answer).contains("workers")
    }

    /// What the image that gave `answer` to `--check-configuration` says it takes over.
    static func takenOver(checkAnswer answer: String) -> [Substring] {
        guard let line = answer.split(separator: "\n").first, let open = line.firstRange(of: "(takes over: "),
              line.hasSuffix(")") else { return [] }
        return line[open.upperBound..<line.index(before: line.endIndex)].split(separator: ",").map { $0.drop { $0 == " " } }
    }

    /// Whether the image that gave `answer` to `--check-configuration` takes over the metrics listener.
    public static func takesOverMetrics(checkAnswer answer: String) -> Bool {
        takenOver(checkAnswer: answer).contains("metrics")
    }

    /// Whether the image that gave `answer` to `--check-configuration` takes over the
    /// children's output pipes (`--child-output capture`): an older one would refuse
    /// the whole state ("unknown record"), exit, and leave the child without a supervisor.
    public static func takesOverChildOutput(checkAnswer answer: String) -> Bool {
        takenOver(checkAnswer: answer).contains("output")
    }

    public struct ListenerRecord: Equatable, Sendable {
        public var fd: Int32
        public var name: String
        public var kind: String
        public var localAddress: String
        public var createdPath: String?
        public var inherited: Bool
        /// The `--listen` address it was bound from (ListenAddress's text), for a bound one.
        public var boundAddress: String?

        public init(fd: Int32, name: String, kind: String, localAddress: String, createdPath: String?, inherited: Bool,
                    boundAddress: String? = nil) {
            self.fd = fd
            self.name = name
            self.kind = kind
            self.localAddress = localAddress
            self.createdPath = createdPath
            self.inherited = inherited
            self.boundAddress = boundAddress
        }
    }

    public struct ChildRecord: Equatable, Sendable {
        /// Its pidfd and notify socket, those it has: what the new image inherits for it.
        var fds: [Int32] { [pidfd, notifyFD].compactMap { $0 } }

        public var generation: Int
        public var pid: Int32
        public var pidfd: Int32?
        public var notifyFD: Int32?
        public var notifyAddress: String?
        public var binaryID: String
        public var startedAt: Int64
        public var lastStatus: String?
        /// When (CLOCK_MONOTONIC, ns; the same clock across exec) it last sent WATCHDOG=1.
        public var lastWatchdog: Int64?

        public init(generation: Int, pid: Int32, pidfd: Int32?, notifyFD: Int32?, notifyAddress: String?,
                    binaryID: String, startedAt: Int64, lastStatus: String?, lastWatchdog: Int64? = nil) {
            self.generation = generation
            self.pid = pid
            self.pidfd = pidfd
            self.notifyFD = notifyFD
            self.notifyAddress = notifyAddress
            self.binaryID = binaryID
            self.startedAt = startedAt
            self.lastStatus = lastStatus
            self.lastWatchdog = lastWatchdog
        }
    }

    /// The read end of a generation's output pipe (`--child-output capture`).
    public struct OutputRecord: Equatable, Sendable {
        public var fd: Int32
        public var generation: Int
        public var pid: Int32
        /// `stdout` or `stderr`.
        public var stream: String

        public init(fd: Int32, generation: Int, pid: Int32, stream: String) {
            self.fd = fd
            self.generation = generation
            self.pid = pid
            self.stream = stream
        }
    }

    /// A steered UDP listener (`--udp-flows steered`): the steering program's and
    /// maps' fds, the spare socket, and `UDPFlowSlots.handoverText`.
    public struct UDPFlowRecord: Equatable, Sendable {
        /// The listener's own fd (as in `listeners`).
        public var listenerFD: Int32
        /// In `UDPSteering.handoverFDs`' order.
        public var steeringFDs: [Int32]
        public var spareFD: Int32?
        public var slots: String

        public init(listenerFD: Int32, steeringFDs: [Int32], spareFD: Int32?, slots: String) {
            self.listenerFD = listenerFD
            self.steeringFDs = steeringFDs
            self.spareFD = spareFD
            self.slots = slots
        }
    }

    public var startedAt: Int64
    public var listeners: [ListenerRecord]
    public var child: ChildRecord
    public var controlFD: Int32?
    public var controlPath: String?
    /// Binaries the upgrade pipeline rejected, so that the new image does not fetch them again.
    public var rejected: [String]
    /// The `--metrics-listen` socket, kept open across the exec (scrapes are never refused).
    public var metricsListener: ListenerRecord?
    /// `BinaryLife.Record`'s text: the trial goes on in the new image.
    public var binaryLife: String?
    /// With `--child-output capture`, the pipes the generations write their output to,
    /// kept open across the exec so that no child loses its stdout or stderr.
    public var childOutput: [OutputRecord]
    /// Steered UDP listeners, kept across the exec with every flow.
    public var udpFlows: [UDPFlowRecord] = []
    /// With `--workers N` (N > 1): every slot's worker (`child` is then worker 0's process).
    public var workers: [WorkerRecord] = []

    public init(startedAt: Int64, listeners: [ListenerRecord], child: ChildRecord, controlFD: Int32?, controlPath: String?,
                rejected: [String], metricsListener: ListenerRecord? = nil, childOutput: [OutputRecord] = [],
                binaryLife: String? = nil) {
        self.metricsListener = metricsListener
        self.childOutput = childOutput
        self.binaryLife = binaryLife
        self.startedAt = startedAt
        self.listeners = listeners
        self.child = child
        self.controlFD = controlFD
        self.controlPath = controlPath
        self.rejected = rejected
    }

    /// Every fd the new image must inherit.
    public var fds: [Int32] {
        let own = listeners.map(\.fd) + child.fds + [controlFD, metricsListener?.fd].compactMap { $0 } + childOutput.map(\.fd)
        let udp = udpFlows.flatMap { $0.steeringFDs + [$0.spareFD].compactMap { $0 } }
        // With --workers, `child` is worker 0's process: its fds once.
        return own + udp + workers.flatMap(\.process.fds).filter { !child.fds.contains($0) }
    }

    public var encoded: String {
        var lines = [["overseerd-handover", Self.version]]
        lines.append(["started", String(startedAt)])
        func fields(_ listener: ListenerRecord) -> [String] {
            [String(listener.fd), listener.name, listener.kind, listener.localAddress, listener.createdPath ?? "",
             listener.inherited ? "inherited" : listener.boundAddress.map { "bound:" + $0 } ?? "bound"]
        }
        for listener in listeners { lines.append(["listener"] + fields(listener)) }
        // Only with --metrics-listen, which an image without this record rejects in its --check-configuration.
        if let metricsListener { lines.append(["metrics"] + fields(metricsListener)) }
        var childFields = ["child", String(child.generation), String(child.pid), child.pidfd.map(String.init) ?? "",
                           child.notifyFD.map(String.init) ?? "", child.notifyAddress ?? "", child.binaryID,
                           String(child.startedAt), child.lastStatus ?? ""]
        // Only when there is one (--watchdog relay): an older image, reading nine fields, can still take over.
        if let lastWatchdog = child.lastWatchdog { childFields.append(String(lastWatchdog)) }
        lines.append(childFields)
        if let controlFD { lines.append(["control", String(controlFD), controlPath ?? ""]) }
        for sha256 in rejected { lines.append(["rejected", sha256]) }
        // Only to an image whose --check-configuration says it reads it.
        if let binaryLife { lines.append(["binary-life", binaryLife]) }
        // Only with --child-output capture, which an image without this record rejects in its --check-configuration.
        for output in childOutput {
            lines.append(["output", String(output.fd), String(output.generation), String(output.pid), output.stream])
        }
        // Only with steered UDP listeners, which an image without this record rejects in its --check-configuration.
        for flows in udpFlows {
            lines.append(["udp-flows", String(flows.listenerFD), flows.steeringFDs.map(String.init).joined(separator: ","),
                          flows.spareFD.map(String.init) ?? "", flows.slots])
        }
        // Only with --workers N, which an image without this record rejects in its --check-configuration.
        for worker in workers { lines.append(worker.fields) }
        return lines.map { $0.map(Self.escape).joined(separator: "\t") }.joined(separator: "\n") + "\n"
    }

    public init(parsing text: String) throws(ConfigurationError) {
        func bad(_ why: String) -> ConfigurationError { ConfigurationError("bad handover state from the previous overseerd: \(why)") }
        var startedAt: Int64?
        var listeners: [ListenerRecord] = []
        var child: ChildRecord?
        var controlFD: Int32?
        var controlPath: String?
        var rejected: [String] = []
        var metricsListener: ListenerRecord?
        var binaryLife: String?
        var childOutput: [OutputRecord] = []
        var udpFlows: [UDPFlowRecord] = []
        var workers: [WorkerRecord] = []
        // Split by Unicode scalar, not by Character: a field ending in "\r" would make one
        // "\r\n" Character of it and the newline after it, and the lines would not split.
        for (index, scalars) in text.unicodeScalars.split(separator: "\n").enumerated() {
            let line = Substring(scalars)
            let fields = scalars.split(separator: "\t", omittingEmptySubsequences: false).map { Self.unescape(String(Substring($0))) }
            if index == 0 {
                guard fields == ["overseerd-handover", Self.version] else { throw bad("unknown format \(line.prefix(40))") }
                continue
            }
            func int32(_ field: String) throws(ConfigurationError) -> Int32? {
                if field.isEmpty { return nil }
                guard let value = Int32(field) else { throw bad("\"\(field)\" is not a number") }
                return value
            }
            switch (fields.first, fields.count) {
            case ("started", 2):
                startedAt = Int64(fields[1])
            case ("listener", 7), ("metrics", 7):
                guard let fd = try int32(fields[1]) else { throw bad("listener without fd") }
                let record = ListenerRecord(fd: fd, name: fields[2], kind: fields[3], localAddress: fields[4],
                                            createdPath: fields[5].isEmpty ? nil : fields[5], inherited: fields[6] == "inherited",
                                            boundAddress: fields[6].hasPrefix("bound:") ? String(fields[6].dropFirst(6)) : nil)
                if fields[0] == "metrics" { metricsListener = record } else { listeners.append(record) }
            case ("child", 9), ("child", 10):
                guard let generation = Int(fields[1]), let pid = try int32(fields[2]), let started = Int64(fields[7]) else {
                    throw bad("child record \(line.prefix(60))")
                }
                child = ChildRecord(generation: generation, pid: pid, pidfd: try int32(fields[3]), notifyFD: try int32(fields[4]),
                                    notifyAddress: fields[5].isEmpty ? nil : fields[5], binaryID: fields[6],
                                    startedAt: started, lastStatus: fields[8].isEmpty ? nil : fields[8],
                                    lastWatchdog: fields.count > 9 ? Int64(fields[9]) : nil)
            case ("control", 3):
                // As `encoded` writes it: a path without the socket's fd is nothing to take over.
                guard let fd = try int32(fields[1]) else { throw bad("control socket without fd") }
                controlFD = fd
                controlPath = fields[2].isEmpty ? nil : fields[2]
            case ("rejected", 2):
                rejected.append(fields[1])
            case ("binary-life", 2):
                binaryLife = fields[1]
            case ("output", 5):
                guard let fd = try int32(fields[1]), let generation = Int(fields[2]), let pid = try int32(fields[3]),
                      ["stdout", "stderr"].contains(fields[4]) else { throw bad("output record \(line.prefix(60))") }
                childOutput.append(OutputRecord(fd: fd, generation: generation, pid: pid, stream: fields[4]))
            case ("udp-flows", 5):
                let steering = fields[2].split(separator: ",").compactMap { Int32($0) }
                guard let fd = try int32(fields[1]), steering.count == 5 else { throw bad("udp-flows record \(line.prefix(60))") }
                udpFlows.append(UDPFlowRecord(listenerFD: fd, steeringFDs: steering, spareFD: try int32(fields[3]), slots: fields[4]))
            case ("worker", WorkerRecord.fieldCount):
                guard let worker = WorkerRecord(fields: fields) else { throw bad("worker record \(line.prefix(60))") }
                workers.append(worker)
            default:
                throw bad("unknown record \(line.prefix(40))")
            }
        }
        guard let startedAt, let child else { throw bad("no child or start time") }
        self.init(startedAt: startedAt, listeners: listeners, child: child, controlFD: controlFD, controlPath: controlPath,
                  rejected: rejected, metricsListener: metricsListener, childOutput: childOutput, binaryLife: binaryLife)
        self.udpFlows = udpFlows
        self.workers = workers
    }

    static func escape(_ field: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in field.unicodeScalars {
            switch scalar {
            case "%": out.append(contentsOf: "%25".unicodeScalars)
            case "\t": out.append(contentsOf: "%09".unicodeScalars)
            case "\n": out.append(contentsOf: "%0A".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    /// The inverse of `escape`, scalar by scalar as well: `%25` followed by a combining
    /// mark is still `%25`, although its `5` and the mark make one Character.
    static func unescape(_ field: String) -> String {
        guard field.unicodeScalars.contains("%") else { return field }
        var out = String.UnicodeScalarView()
        var rest = Substring(field).unicodeScalars
        while let scalar = rest.popFirst() {
            if scalar == "%" {
                let code = String(Substring(rest.prefix(2)))
                let decoded: Unicode.Scalar? = switch code { case "25": "%"; case "09": "\t"; case "0A": "\n"; default: nil }
                if let decoded {
                    out.append(decoded)
                    rest.removeFirst(2)
                    continue
                }
            }
            out.append(scalar)
        }
        return String(out)
    }
}
