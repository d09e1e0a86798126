import OverseerCore
import OverseerProtocol

/// `--listen [NAME=]ADDRESS`: what parses is written back by `description` as text that parses to the same.
func fuzzListen(_ bytes: UnsafeRawBufferPointer) {
    let input = text(bytes)
    if let address = try? ListenAddress(parsing: input) {
        let again = Result { () throws(ConfigurationError) in try ListenAddress(parsing: address.description) }
        require((try? again.get()) == address, "ListenAddress \(input.debugDescription) -> \(address.description.debugDescription) -> \(again)")
        if case let .unix(path) = address {
            require(!path.isEmpty && path.utf8.count <= ListenAddress.maximumUnixPathLength && !path.utf8.contains(0),
                    "unix path \(path.debugDescription) out of bounds")
        }
    }
    if let spec = try? ListenerSpec(parsing: input) {
        let again = Result { () throws(ConfigurationError) in try ListenerSpec(parsing: spec.description) }
        let reparsed = try? again.get()
        require(reparsed?.name == spec.name && reparsed?.address == spec.address,
                "ListenerSpec \(input.debugDescription) -> \(spec.description.debugDescription) -> \(again)")
        require((try? SocketName(spec.name.rawValue)) == spec.name, "listener name \(spec.name.rawValue.debugDescription) is not a valid SocketName")
    }
}
