import Glibc

/// Who this process runs as.
public enum ProcessCredentials {
    /// The real uid: whose default control socket path to use.
    public static var realUID: UInt32 { getuid() }
    /// The effective uid: whose files and sockets this process may trust.
    public static var effectiveUID: UInt32 { geteuid() }
}
