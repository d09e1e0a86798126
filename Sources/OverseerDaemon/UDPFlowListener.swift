import OverseerCore
import OverseerProtocol
import OverseerSystem
import SystemPackage

/// One steered UDP listener: the steering program and maps, `UDPFlowSlots`,
/// and the spare socket overseerd holds. The listener overseerd bound (or was
/// handed) stays in the group, never in a slot: it keeps the address and the
/// program's group while generations come and go.
final class UDPFlowListener {
    /// Its place among the listeners (the child's fd 3 + index).
    let index: Int
    let listener: Listener
    let steering: UDPSteering
    private(set) var slots: UDPFlowSlots
    /// The spare's fd, held until a generation gets it.
    private(set) var spareFD: FileDescriptor?
    /// Sockets handed to a generation whose spawn has not yet returned: overseerd's copies, closed after it.
    private var handedOut: [Int: FileDescriptor] = [:]

    /// Loads the program, attaches it to the listener's group and opens the first spare.
    init(index: Int, listener: Listener, flowTimeout: Duration) throws(UDPSteeringError) {
        self.index = index
        self.listener = listener
        steering = try UDPSteering(flowTimeout: flowTimeout)
        slots = UDPFlowSlots(slotCount: UDPSteering.slotCount)
        do {
            try steering.attach(to: listener.fd)
            try perform(slots.start())
        } catch let error as UDPSteeringError {
            close()
            throw error
        } catch {
            close()
            throw UDPSteeringError(failed: "\(error)")
        }
    }

    /// Takes over what the previous image handed on.
    init(index: Int, listener: Listener, record: HandoverState.UDPFlowRecord, flowTimeout: Duration) throws(ConfigurationError) {
        self.index = index
        self.listener = listener
        steering = UDPSteering(adopting: record.steeringFDs, flowTimeout: flowTimeout)
        slots = try UDPFlowSlots(slotCount: UDPSteering.slotCount, handoverText: record.slots)
        spareFD = record.spareFD.map { FileDescriptor(rawValue: $0) }
        // The timeout given to this image holds from now on.
        if let target = slots.newFlows { try? steering.directNewFlows(to: target.slot) }
    }

    var handoverRecord: HandoverState.UDPFlowRecord {
        .init(listenerFD: listener.fd.rawValue, steeringFDs: steering.handoverFDs, spareFD: spareFD?.rawValue,
              slots: slots.handoverText)
    }

    /// The socket `generation` gets at the listener's fd number: the spare (and a
    /// new spare is opened). Nil when there is none: the generation then gets the
    /// listener itself, shared. `problem`: a step that failed (the new spare, a map update).
    /// Asked again before `spawned` (several processes of one generation), it gives the same socket.
    func socket(for generation: Int) -> (fd: FileDescriptor?, problem: SystemError?) {
        if let given = handedOut[generation] { return (given, nil) }
        if spareFD == nil, let spare = slots.spare {
            do { try open(spare) } catch { return (nil, error) }
        }
        guard let fd = spareFD else { return (nil, nil) }
        let (socket, actions) = slots.starting(generation)
        guard socket != nil else { return (nil, nil) }
        spareFD = nil
        handedOut[generation] = fd
        do { try perform(actions) } catch { return (fd, error) }
        return (fd, nil)
    }

    /// The spawn of `generation` returned: overseerd's copy of its socket goes,
    /// so that the kernel takes the socket out of the group when the generation closes it.
    func spawned(_ generation: Int) {
        if let fd = handedOut.removeValue(forKey: generation) { Posix.close(fd) }
    }

    func serving(_ generation: Int?) throws(SystemError) {
        try perform(slots.serving(generation))
    }

    /// `generation` exited or could not be started: its flows become new flows.
    func ended(_ generation: Int) throws(SystemError) {
        spawned(generation)
        try perform(slots.ended(generation))
    }

    /// What a count of the flows on another thread needs: the slots' tags and owners now.
    var countingSnapshot: UDPFlowCount.Snapshot {
        var tags = [UInt32](repeating: 0, count: Int(UDPSteering.slotCount))
        var owners: [UInt32: Int] = [:]
        for (generation, socket) in slots.generations {
            tags[Int(socket.slot)] = socket.tag
            owners[socket.slot] = generation
        }
        if let spare = slots.spare { tags[Int(spare.slot)] = spare.tag }
        return .init(index: index, counter: steering.flowCounter, tags: tags, owners: owners, spareSlot: slots.spare?.slot)
    }

    func close() {
        if let spareFD { Posix.close(spareFD) }
        spareFD = nil
        steering.close()
    }

    private func perform(_ actions: [UDPFlowSlots.Action]) throws(SystemError) {
        for action in actions {
            switch action {
            case let .open(socket):
                try open(socket)
            case let .clear(socket):
                try steering.clear(slot: socket.slot)
            case let .directNewFlows(socket):
                try steering.directNewFlows(to: socket.slot)
            }
        }
    }

    private func open(_ socket: UDPFlowSlots.Socket) throws(SystemError) {
        let fd = try ReusePortSocket.join(groupOf: listener.fd)
        do {
            try steering.place(fd, slot: socket.slot, tag: socket.tag)
        } catch {
            Posix.close(fd)
            throw error
        }
        spareFD = fd
    }
}

/// A count of one steered listener's live flows, taken on a thread of its own.
struct UDPFlowCount: Sendable {
    struct Snapshot: Sendable {
        let index: Int
        let counter: UDPSteering.FlowCounter
        let tags: [UInt32]
        /// Slot → the generation whose socket is in it.
        let owners: [UInt32: Int]
        let spareSlot: UInt32?

        /// Reads the table (off the loop).
        func count() -> UDPFlowCount {
            do {
                let counts = try counter.counts(tags: tags)
                var byGeneration: [Int: UInt64] = [:]
                for (slot, generation) in owners { byGeneration[generation] = counts[Int(slot)] }
                return UDPFlowCount(byGeneration: byGeneration, waiting: spareSlot.map { counts[Int($0)] } ?? 0, error: nil)
            } catch {
                return UDPFlowCount(byGeneration: [:], waiting: 0, error: "\(error)")
            }
        }
    }

    let byGeneration: [Int: UInt64]
    /// Taken by the spare while no generation lived.
    let waiting: UInt64
    let error: String?
}
