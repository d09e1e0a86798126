import OverseerProtocol
import Testing

/// Control socket request lines: what parses, and what it is written back as.
@Suite struct ControlRequestTests {
    @Test(arguments: [("forget-keys", ControlRequest.forgetKeys), ("  forget-keys\r", .forgetKeys), ("reexec", .reexec),
                      ("forget " + String(repeating: "AB", count: 32), .forget(sha256: String(repeating: "ab", count: 32)))])
    func parsesAndWritesBack(line: String, request: ControlRequest) throws {
        #expect(try ControlRequest(parsing: line) == request)
        #expect(try ControlRequest(parsing: request.line) == request)
    }

    @Test(arguments: ["forget-keys now", "forget-key", "forgetkeys"])
    func unknownRequestsNameTheKnownOnes(line: String) {
        #expect { try ControlRequest(parsing: line) } throws: { "\($0)".contains("forget SHA256 or forget-keys") }
    }
}
