/// Which socket of a steered UDP listener each generation gets, which slot of
/// the steering program each socket sits in, and where new flows go: pure, one
/// value per listener, fed the generations' lives by the daemon, which carries
/// out the actions on the sockets and maps.
///
/// There is always one socket in the group that no generation has yet, the
/// spare, and overseerd holds it: the next generation to start gets it (so its
/// socket joined the group before it started), and datagrams of new flows wait
/// in it while no generation lives. Once a generation has its socket overseerd
/// closes its own copy: when the generation closes it or exits, the kernel takes
/// the socket out of the group and the program sends its flows on as new ones.
/// New flows go to the serving generation; when none serves, to the newest that
/// lives; when none lives, to the spare.
public struct UDPFlowSlots: Equatable, Sendable {
    /// One socket of the group: its slot in the program's socket array and its tag (never 0).
    public struct Socket: Hashable, Sendable, CustomStringConvertible {
        public let slot: UInt32
        public let tag: UInt32

        public init(slot: UInt32, tag: UInt32) {
            self.slot = slot
            self.tag = tag
        }

        public var description: String { "\(slot):\(tag)" }
    }

    public enum Action: Equatable, Sendable {
        /// Bind a new socket into the group (overseerd keeps it) and put it in its slot.
        case open(Socket)
        /// Empty the socket's slot: its flows become new flows (overseerd closes its fd, if it has one).
        case clear(Socket)
        /// New flows go to this socket from now on.
        case directNewFlows(Socket)
    }

    public let slotCount: UInt32
    /// The socket no generation has yet.
    public private(set) var spare: Socket?
    /// Each living generation's socket; a generation whose slot was taken back
    /// (more generations alive than slots) is no longer here.
    public private(set) var generations: [Int: Socket] = [:]
    public private(set) var serving: Int?
    /// Where new flows go now.
    public private(set) var newFlows: Socket?
    private var lastTag: UInt32 = 0

    /// Before any socket (`start` opens the first spare).
    public init(slotCount: UInt32) {
        precondition(slotCount >= 3, "a restart needs three slots: the serving generation, the new one, the spare")
        self.slotCount = slotCount
    }

    /// Restores what a previous overseerd image handed on (`handoverText`).
    public init(slotCount: UInt32, spare: Socket?, generations: [Int: Socket], serving: Int?, lastTag: UInt32) {
        self.slotCount = slotCount
        self.spare = spare
        self.generations = generations
        self.serving = serving
        self.lastTag = lastTag
        newFlows = nil
        _ = redirect()
    }

    /// The first spare: open it, and direct new flows to it.
    public mutating func start() -> [Action] {
        var actions = openSpare()
        actions += redirect()
        return actions
    }

    /// `generation` is about to start: it gets the spare (returned), and a new
    /// spare takes another slot (the oldest generation's, when none is free).
    public mutating func starting(_ generation: Int) -> (socket: Socket?, actions: [Action]) {
        var actions: [Action] = []
        if spare == nil { actions += openSpare() }
        guard let socket = spare else { return (nil, actions) }
        generations[generation] = socket
        spare = nil
        actions += openSpare()
        actions += redirect()
        return (socket, actions)
    }

    /// `generation` (or none) serves now: new flows go to its socket.
    public mutating func serving(_ generation: Int?) -> [Action] {
        serving = generation
        return redirect()
    }

    /// `generation` ended (exited, or never started): its slot is emptied, its flows become new flows.
    public mutating func ended(_ generation: Int) -> [Action] {
        if serving == generation { serving = nil }
        guard let socket = generations.removeValue(forKey: generation) else { return redirect() }
        // New flows are sent elsewhere before the slot is emptied: never to an empty slot.
        var actions = redirect() + [.clear(socket)]
        if spare == nil {
            actions += openSpare()
            actions += redirect()
        }
        return actions
    }

    /// The socket new flows should go to.
    var target: Socket? {
        if let serving, let socket = generations[serving] { return socket }
        if let newest = generations.max(by: { $0.key < $1.key }) { return newest.value }
        return spare
    }

    private mutating func redirect() -> [Action] {
        guard let target = target, target != newFlows else { return [] }
        newFlows = target
        return [.directNewFlows(target)]
    }

    /// A new spare in a free slot; with none free, the slot of the oldest
    /// generation that neither serves nor is the newest is taken back (it keeps
    /// running; its flows go to newer generations).
    private mutating func openSpare() -> [Action] {
        var actions: [Action] = []
        let taken = Set(generations.values.map(\.slot))
        var free = (0..<slotCount).first { !taken.contains($0) }
        let newest = generations.keys.max()
        if free == nil, let oldest = generations.filter({ $0.key != serving && $0.key != newest }).min(by: { $0.key < $1.key }) {
            generations[oldest.key] = nil
            actions.append(.clear(oldest.value))
            free = oldest.value.slot
        }
        guard let slot = free else { return actions }
        lastTag = lastTag == UInt32.max ? 1 : lastTag + 1
        let socket = Socket(slot: slot, tag: lastTag)
        spare = socket
        actions.append(.open(socket))
        return actions
    }

    /// One line for a re-exec's handover: `spare slot:tag`, `last tag`, `serving`, then `generation=slot:tag`...
    public var handoverText: String {
        func text(_ socket: Socket?) -> String { socket.map { "\($0.slot):\($0.tag)" } ?? "-" }
        let living = generations.sorted { $0.key < $1.key }.map { "\($0.key)=\(text($0.value))" }
        return ([text(spare), String(lastTag), serving.map(String.init) ?? "-"] + living).joined(separator: " ")
    }

    /// Reads `handoverText`.
    public init(slotCount: UInt32, handoverText text: String) throws(ConfigurationError) {
        func bad() -> ConfigurationError { ConfigurationError("bad UDP flow record from the previous overseerd: \(text.prefix(80))") }
        func socket(_ field: Substring) throws(ConfigurationError) -> Socket? {
            if field == "-" { return nil }
            let parts = field.split(separator: ":")
            guard parts.count == 2, let slot = UInt32(parts[0]), let tag = UInt32(parts[1]), slot < slotCount, tag != 0 else { throw bad() }
            return Socket(slot: slot, tag: tag)
        }
        let fields = text.split(separator: " ")
        guard fields.count >= 3, let lastTag = UInt32(fields[1]) else { throw bad() }
        var generations: [Int: Socket] = [:]
        for field in fields.dropFirst(3) {
            let pair = field.split(separator: "=")
            guard pair.count == 2, let generation = Int(pair[0]), let socket = try socket(pair[1]) else { throw bad() }
            generations[generation] = socket
        }
        let serving: Int? = fields[2] == "-" ? nil : Int(fields[2])
        if fields[2] != "-", serving == nil { throw bad() }
        self.init(slotCount: slotCount, spare: try socket(fields[0]), generations: generations, serving: serving, lastTag: lastTag)
    }
}
