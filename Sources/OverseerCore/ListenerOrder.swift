import OverseerProtocol

/// The order in which the child gets its sockets (fd 3, 4, …), from the
/// sockets overseerd inherited and its `--listen` options.
///
/// A named `--listen` whose name an inherited socket carries (a socket systemd
/// kept in the fd store across `systemctl restart`, or a socket unit's) takes
/// that socket instead of binding anew, at the `--listen`'s own position, so
/// the child sees its sockets in `--listen` order however systemd ordered them
/// (252 hands stored sockets back in another order). Inherited sockets that no
/// `--listen` names come first, in the order they came, as before.
public enum ListenerOrder {
    public enum Slot: Equatable, Sendable {
        /// The inherited socket at this index of the inherited list.
        case inherited(Int)
        /// Bind the `--listen` at this index of the specs.
        case bind(Int)
    }

    public static func arrange(inherited names: [SocketName], listens specs: [ListenerSpec]) -> [Slot] {
        var unclaimed = Array(names.indices)
        var fromListens: [Slot] = []
        for (specIndex, spec) in specs.enumerated() {
            if spec.isNamed, let position = unclaimed.firstIndex(where: { names[$0] == spec.name }) {
                fromListens.append(.inherited(unclaimed.remove(at: position)))
            } else {
                fromListens.append(.bind(specIndex))
            }
        }
        return unclaimed.map(Slot.inherited) + fromListens
    }
}
