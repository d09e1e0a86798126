import COverseerShims
import Glibc
import SystemPackage

/// The BPF program and maps that steer one UDP listener's datagrams between the
/// sockets of its SO_REUSEPORT group (`udp_steering.c`): a datagram of a known
/// flow (4-tuple) goes to the socket that took the flow, a new flow to the
/// socket in the newest slot. Sockets sit in numbered slots, each named by a
/// tag (never 0) so that a flow stays with its socket, not with its slot.
public final class UDPSteering {
    /// How many sockets one group can steer to at once.
    public static let slotCount: UInt32 = 64
    /// How many flows the table keeps (least recently seen evicted first).
    public static let maximumFlows: UInt32 = 65_536

    private var maps: overseer_udp_steering
    public private(set) var flowTimeout: Duration

    /// Creates the maps and loads the program; throws why this kernel or
    /// process cannot (the caller falls back to one shared socket).
    public init(flowTimeout: Duration) throws(UDPSteeringError) {
        var maps = overseer_udp_steering()
        var stage: Int32 = 0
        var log = [CChar](repeating: 0, count: 16_384)
        let rc = overseer_udp_steering_create(Self.slotCount, Self.maximumFlows, Self.nanoseconds(flowTimeout),
                                              &maps, &stage, &log, log.count)
        guard rc == 0 else {
            let errno = Errno(rawValue: Glibc.errno)
            throw UDPSteeringError(stage: stage, errno: errno, verifierLog: String(cString: log))
        }
        self.maps = maps
        self.flowTimeout = flowTimeout
    }

    /// Why steering cannot be had in this process (nil: it can): loads the
    /// program and its maps once, and closes them again.
    public static func probe() -> UDPSteeringError? {
        do {
            try UDPSteering(flowTimeout: .seconds(1)).close()
            return nil
        } catch {
            return error
        }
    }

    /// Takes over the maps a previous overseerd image handed on (in `handoverFDs`' order).
    public init(adopting fds: [Int32], flowTimeout: Duration) {
        maps = overseer_udp_steering(program_fd: fds[0], sockets_fd: fds[1], flows_fd: fds[2], tags_fd: fds[3], config_fd: fds[4])
        self.flowTimeout = flowTimeout
    }

    /// The program's and the maps' fds, for a re-exec.
    public var handoverFDs: [Int32] { [maps.program_fd, maps.sockets_fd, maps.flows_fd, maps.tags_fd, maps.config_fd] }

    /// Attaches the program to the group `socket` belongs to (bound, SO_REUSEPORT).
    public func attach(to socket: FileDescriptor) throws(UDPSteeringError) {
        guard overseer_udp_steering_attach(maps.program_fd, socket.rawValue) == 0 else {
            throw UDPSteeringError(stage: UDPSteeringError.attachStage, errno: Errno(rawValue: Glibc.errno), verifierLog: "")
        }
    }

    /// Puts `socket` (of the group) in `slot`, named `tag`.
    public func place(_ socket: FileDescriptor, slot: UInt32, tag: UInt32) throws(SystemError) {
        try Posix.retrying("bpf(BPF_MAP_UPDATE_ELEM) of the UDP socket array") {
            overseer_udp_steering_set_slot(&maps, slot, socket.rawValue, tag)
        }
    }

    /// Empties `slot`: the flows of the socket that was there become new flows.
    public func clear(slot: UInt32) throws(SystemError) {
        try Posix.retrying("bpf(BPF_MAP_DELETE_ELEM) of the UDP socket array") { overseer_udp_steering_clear_slot(&maps, slot) }
    }

    /// New flows go to the socket in `slot` from now on.
    public func directNewFlows(to slot: UInt32) throws(SystemError) {
        try Posix.retrying("bpf(BPF_MAP_UPDATE_ELEM) of the UDP steering config") {
            overseer_udp_steering_configure(&maps, slot, Self.nanoseconds(flowTimeout))
        }
    }

    /// What counting the flows needs, for a thread of its own: a full table
    /// takes about 18 ms to read (65 536 flows, measured here), too long for the event loop.
    public var flowCounter: FlowCounter { FlowCounter(flowsFD: maps.flows_fd, timeoutNS: Self.nanoseconds(flowTimeout)) }

    /// Counts live flows (seen within the timeout) per slot.
    public struct FlowCounter: Sendable {
        let flowsFD: Int32
        let timeoutNS: UInt64

        /// The live flows of each slot whose tag is in `tags` (index = slot).
        public func counts(tags: [UInt32]) throws(SystemError) -> [UInt64] {
            var tags = tags + [UInt32](repeating: 0, count: max(0, Int(UDPSteering.slotCount) - tags.count))
            var counts = [UInt64](repeating: 0, count: tags.count)
            var maps = overseer_udp_steering(program_fd: -1, sockets_fd: -1, flows_fd: flowsFD, tags_fd: -1, config_fd: -1)
            let slots = UInt32(tags.count)
            let timeout = timeoutNS
            try Posix.retrying("bpf(BPF_MAP_LOOKUP_BATCH) of the UDP flows") {
                overseer_udp_steering_count_flows(&maps, &tags, slots, timeout, &counts)
            }
            return counts
        }
    }

    /// The live flows of each slot whose tag is in `tags` (index = slot), read here and now.
    public func flowCounts(tags: [UInt32]) throws(SystemError) -> [UInt64] {
        try flowCounter.counts(tags: tags)
    }

    /// Closes overseerd's fds of the program and maps (a group it is attached to keeps it).
    public func close() { overseer_udp_steering_close(&maps) }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

/// Why UDP flows cannot be steered here, worded for the operator.
public struct UDPSteeringError: Error, Sendable, CustomStringConvertible {
    /// What stands in the way.
    public enum Cause: Equatable, Sendable {
        /// bpf(2) refused: no CAP_BPF / CAP_SYS_ADMIN, or a seccomp filter, or unprivileged BPF disabled.
        case notPermitted
        /// The kernel has no bpf(2), or not the map or program type (before Linux 4.19/5.x).
        case unsupportedKernel
        /// The kernel's verifier refused the program.
        case verifierRefused
        /// Anything else (out of memory, a locked-memory limit, ...).
        case other
    }

    static let attachStage: Int32 = 100

    /// A step after the program loaded failed (the first spare socket, a map update).
    public init(failed reason: String) {
        cause = .other
        errno = .ioError
        verifierLog = ""
        description = reason
    }

    public let cause: Cause
    public let errno: Errno
    public let description: String
    /// The verifier's log, when it refused the program.
    public let verifierLog: String

    init(stage: Int32, errno: Errno, verifierLog: String) {
        self.errno = errno
        let call = switch stage {
        case Int32(OVERSEER_STEERING_STAGE_SOCKARRAY): "bpf(BPF_MAP_CREATE, REUSEPORT_SOCKARRAY)"
        case Int32(OVERSEER_STEERING_STAGE_FLOWS): "bpf(BPF_MAP_CREATE, LRU_HASH)"
        case Int32(OVERSEER_STEERING_STAGE_PROGRAM): "bpf(BPF_PROG_LOAD, SK_REUSEPORT)"
        case Self.attachStage: "setsockopt(SO_ATTACH_REUSEPORT_EBPF)"
        default: "bpf(BPF_MAP_CREATE)"
        }
        let reason = SystemError(call, errno: errno).reason
        let cause: Cause
        let hint: String
        switch errno {
        case .notPermitted, .permissionDenied where stage != Int32(OVERSEER_STEERING_STAGE_PROGRAM):
            cause = .notPermitted
            hint = "overseerd needs CAP_BPF (or CAP_SYS_ADMIN), and no seccomp filter refusing bpf(2)"
        case .noFunction, .protocolNotAvailable, .notSupported:
            cause = .unsupportedKernel
            hint = "this kernel has no bpf(2) or no SO_ATTACH_REUSEPORT_EBPF (Linux 4.19 or later is needed)"
        case .invalidArgument where stage != Int32(OVERSEER_STEERING_STAGE_PROGRAM):
            cause = .unsupportedKernel
            hint = "this kernel lacks that map type (Linux 4.19 or later is needed)"
        case .permissionDenied, .invalidArgument:
            cause = .verifierRefused
            let lastLine = verifierLog.split(separator: "\n").last(where: { !$0.isEmpty }).map(String.init) ?? ""
            hint = "the kernel's verifier refused the program (Linux 5.x or later is needed)" + (lastLine.isEmpty ? "" : ": \(lastLine.prefix(200))")
        default:
            cause = .other
            hint = "check the locked-memory limit (LimitMEMLOCK=) and the memory cgroup"
        }
        self.cause = cause
        self.verifierLog = verifierLog
        self.description = "\(call) failed: \(reason) (\(hint))"
    }
}
