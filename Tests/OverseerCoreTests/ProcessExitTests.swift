import Glibc
import OverseerCore
import Testing

@Suite struct ProcessExitTests {
    @Test(arguments: [
        (ProcessExit.exited(0), Int32(0), "status 0"),
        (.exited(3), 3, "status 3"),
        (.exited(255), 255, "status 255"),
        (.killed(signal: SIGTERM), 143, "signal SIGTERM"),
        (.killed(signal: SIGKILL), 137, "signal SIGKILL"),
        (.killed(signal: 40), 168, "signal SIG40"),
    ])
    func shellStatusAndDescription(_ exit: ProcessExit, _ status: Int32, _ description: String) {
        #expect(exit.shellStatus == status)
        #expect(exit.description == description)
    }

    @Test func exitCodesAreStable() {
        #expect(OverseerExitCode.usage == 64)
        #expect(OverseerExitCode.notReady == 69)
        #expect(OverseerExitCode.systemFailure == 71)
        #expect(OverseerExitCode.cannotExecute == 126)
        #expect(OverseerExitCode.notFound == 127)
    }
}
