/// What a process uses, as /proc reports it; nil where it could not be read
/// (a full fd table leaves no fd to open /proc with).
public struct ProcessUsage: Equatable, Sendable {
    /// Resident set size (VmRSS), in bytes.
    public var residentBytes: UInt64?
    /// Open file descriptors.
    public var openFDs: UInt64?
    /// The soft RLIMIT_NOFILE.
    public var maxFDs: UInt64?
    /// User plus system CPU time, in seconds.
    public var cpuSeconds: Double?
    /// When the process started, in seconds since the Unix epoch.
    public var startTimeSeconds: Double?

    public init(residentBytes: UInt64? = nil, openFDs: UInt64? = nil, maxFDs: UInt64? = nil,
                cpuSeconds: Double? = nil, startTimeSeconds: Double? = nil) {
        self.residentBytes = residentBytes
        self.openFDs = openFDs
        self.maxFDs = maxFDs
        self.cpuSeconds = cpuSeconds
        self.startTimeSeconds = startTimeSeconds
    }
}
