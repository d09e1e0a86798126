import OverseerCore
import OverseerProtocol
import Testing

/// fd 3, 4, … in --listen order, whatever order systemd hands sockets back in.
@Suite struct ListenerOrderTests {
    static func spec(_ text: String) throws -> ListenerSpec { try ListenerSpec(parsing: text) }
    static func name(_ text: String) throws -> SocketName { try SocketName(text) }

    @Test func storedSocketsHandedBackReversedTakeTheirListenPlaces() throws {
        let slots = ListenerOrder.arrange(inherited: [try Self.name("admin"), try Self.name("http")],
                                          listens: [try Self.spec("http=127.0.0.1:80"), try Self.spec("admin=127.0.0.1:81")])
        #expect(slots == [.inherited(1), .inherited(0)])
    }

    @Test func unnamedInheritedSocketsComeFirstThenTheListensInOrder() throws {
        let slots = ListenerOrder.arrange(inherited: [try Self.name("unit"), try Self.name("metrics")],
                                          listens: [try Self.spec("http=:80"), try Self.spec("metrics=:9100"), try Self.spec(":8080")])
        #expect(slots == [.inherited(0), .bind(0), .inherited(1), .bind(2)])
    }

    @Test func nothingInheritedBindsEverything() throws {
        #expect(ListenerOrder.arrange(inherited: [], listens: [try Self.spec(":80"), try Self.spec(":81")]) == [.bind(0), .bind(1)])
        #expect(ListenerOrder.arrange(inherited: [try Self.name("a"), try Self.name("b")], listens: []) == [.inherited(0), .inherited(1)])
    }
}
