import OverseerCore

/// The state one overseerd image hands the next. First byte even: the rest is
/// handover text, and what parses must encode to text that parses to the same.
/// Odd: the rest builds a state, and its encoding must parse back to it exactly.
func fuzzHandover(_ bytes: UnsafeRawBufferPointer) {
    var reader = ByteReader(bytes)
    if reader.byte() & 1 == 0 {
        let input = reader.rest()
        guard let state = try? HandoverState(parsing: input) else { return }
        let again = try? HandoverState(parsing: state.encoded)
        require(again == state, "handover \(input.debugDescription) -> \(state.encoded.debugDescription) -> \(String(describing: again))")
        return
    }
    var listeners: [HandoverState.ListenerRecord] = []
    for _ in 0 ..< reader.byte() % 4 {
        listeners.append(HandoverState.ListenerRecord(
            fd: reader.integer(), name: reader.string(), kind: reader.string(), localAddress: reader.string(),
            createdPath: reader.optionalString(), inherited: reader.bool()))
    }
    let child = HandoverState.ChildRecord(
        generation: reader.integer(), pid: reader.integer(), pidfd: reader.bool() ? reader.integer() : nil,
        notifyFD: reader.bool() ? reader.integer() : nil, notifyAddress: reader.optionalString(),
        binaryID: reader.string(), startedAt: reader.integer(), lastStatus: reader.optionalString(maxLength: 200))
    let controlFD: Int32? = reader.bool() ? reader.integer() : nil
    let controlPath = controlFD == nil ? nil : reader.optionalString()
    var rejected: [String] = []
    for _ in 0 ..< reader.byte() % 3 { rejected.append(reader.string()) }
    let metrics = reader.bool() ? HandoverState.ListenerRecord(
        fd: reader.integer(), name: reader.string(), kind: reader.string(), localAddress: reader.string(),
        createdPath: reader.optionalString(), inherited: reader.bool()) : nil
    let state = HandoverState(startedAt: reader.integer(), listeners: listeners, child: child,
                              controlFD: controlFD, controlPath: controlPath, rejected: rejected, metricsListener: metrics)
    let encoded = state.encoded
    let again = Result { () throws(ConfigurationError) in try HandoverState(parsing: encoded) }
    require((try? again.get()) == state, "handover \(state) -> \(encoded.debugDescription) -> \(again)")
}
