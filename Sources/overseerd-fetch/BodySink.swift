/// Where the body of a successful (2xx) response goes, as it arrives.
protocol BodySink: AnyObject {
    /// The final response's headers are complete and its status is 2xx; no body byte was given yet.
    func begin(_ headers: ResponseHeaders) throws(FetchFailure)
    /// The next piece of the body (after libcurl removed any Content-Encoding).
    func write(_ bytes: UnsafeRawBufferPointer) throws(FetchFailure)
    /// The transfer ended cleanly: check that nothing is missing.
    func finish() throws(FetchFailure)
}
