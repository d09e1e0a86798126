import OverseerProtocol

/// One NOTIFY_SOCKET datagram: what parses encodes to a datagram with the same assignments.
func fuzzNotify(_ bytes: UnsafeRawBufferPointer) {
    let message = NotifyMessage(parsing: bytes)
    for (key, value) in message.assignments {
        require(!key.isEmpty && !key.contains("=") && !key.utf8.contains(0x0a) && !value.utf8.contains(0x0a),
                "notify assignment \(key.debugDescription)=\(value.debugDescription)")
    }
    let again = NotifyMessage(parsing: Array(message.encoded.utf8))
    require(again == message, "notify \(Array(bytes)) -> \(message.encoded.debugDescription) -> \(again.assignments)")
    _ = (message.isReady, message.isStopping, message.isReloading, message.isWatchdogPing, message.status)
}

/// A line of overseerd-fetch's JSON report: what parses encodes to a line that parses to the same.
func fuzzFetchReport(_ bytes: UnsafeRawBufferPointer) {
    let input = text(bytes)
    guard let report = try? FetchReport(parsing: input) else { return }
    let encoded = report.encoded
    require(!encoded.utf8.contains(0x0a), "fetch report encoded over several lines: \(encoded.debugDescription)")
    let again = Result { () throws(ProtocolError) in try FetchReport(parsing: encoded) }
    require((try? again.get()) == report, "fetch report \(input.debugDescription) -> \(encoded.debugDescription) -> \(again)")
    _ = (report.bytes, report.sha256, report.etag, report.lastModified, report.url, report.message, report.kind,
         report.status, report.sidecar(".sha256"))
}

/// A control socket request line: what parses is written back as the same request.
func fuzzControl(_ bytes: UnsafeRawBufferPointer) {
    let input = text(bytes)
    guard let request = try? ControlRequest(parsing: input) else { return }
    require((try? ControlRequest(parsing: request.line)) == request, "control \(input.debugDescription) -> \(request.line.debugDescription)")
}
