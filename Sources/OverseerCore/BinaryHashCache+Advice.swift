extension BinaryHashCache {
    /// What to do when the cache file could not be written: give a state
    /// directory when there is none, else make room in the one given.
    public static func unsavedAdvice(stateDirectory: String?) -> String {
        guard let stateDirectory else {
            return "give --state-directory DIR, a directory only this user can write"
        }
        return "free space in \(stateDirectory), or raise ulimit -f / LimitFSIZE="
    }
}
