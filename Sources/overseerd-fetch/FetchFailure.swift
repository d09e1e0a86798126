import OverseerProtocol

/// Why a fetch produced nothing usable: becomes a `result: error` report.
struct FetchFailure: Error, Equatable {
    /// The `kind` field of the report: what class of problem it was.
    enum Kind: String {
        case http, size, timeout, network, tls, io, format, sidecar, usage
    }

    var kind: Kind
    /// The HTTP status of the response that failed, when there was one.
    var status: Int?
    /// One line a person can act on, naming the URL.
    var message: String
    /// The validators of a body that was too large: the daemon sends them with
    /// the next poll, so the same body is not downloaded again until it changes.
    var etag: String?
    var lastModified: String?

    init(_ kind: Kind, status: Int? = nil, _ message: String) {
        self.kind = kind
        self.status = status
        // The report is one line: keep the message on one too.
        self.message = String(message.map { $0.isNewline ? " " : $0 })
    }

    /// The report line for this failure.
    var report: FetchReport {
        var fields: [String: JSONValue] = [
            "kind": .string(kind.rawValue),
            "message": .string(message),
        ]
        if let status { fields["status"] = .integer(Int64(status)) }
        if let etag { fields["etag"] = .string(etag) }
        if let lastModified { fields["last_modified"] = .string(lastModified) }
        return FetchReport(result: .error, fields: fields)
    }

    /// The process exit status that goes with this failure.
    var exitCode: Int32 {
        kind == .usage ? FetchReport.ExitCode.usage : FetchReport.ExitCode.failed
    }

    static func usage(_ message: String) -> FetchFailure {
        FetchFailure(.usage, "overseerd-fetch: " + message + " (see overseerd-fetch --help)")
    }
}
