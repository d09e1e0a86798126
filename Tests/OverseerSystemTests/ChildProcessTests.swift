#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OverseerCore
import OverseerProtocol
@testable import OverseerSystem
import Testing

@Suite struct ChildProcessTests {
    private func waitForExit(_ child: ChildProcess, timeout: Double = 10) -> ProcessExit? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let exit = child.reap() { child.release(); return exit }
            usleep(2000)
        }
        return nil
    }

    private func scratchFile() -> String {
        NSTemporaryDirectory() + "overseerd-child-\(UInt64.random(in: 0 ... .max))"
    }

    @Test func listenPIDIsTheChildsOwnPid() throws {
        let output = scratchFile()
        defer { unlink(output) }
        let listener = try ListenerBinder.bind(ListenerSpec(parsing: "127.0.0.1:0"), backlog: 16, unixMode: nil)
        defer { ListenerBinder.close([listener]) }
        let environment = ChildEnvironment.entries(
            inherited: [("PATH", "/usr/bin:/bin")], sockets: ListenFDs(names: [try SocketName("web")]),
            facts: .init(binaryPath: "/bin/sh", binaryID: "x", generation: 1))
        let child = try ChildProcess.spawn(.init(
            path: "/bin/sh", arguments: ["sh", "-c", "echo $LISTEN_PID $$ $LISTEN_FDS $LISTEN_FDNAMES > \(output)"],
            environment: environment, writesListenPID: true,
            fdMap: [-1, -1, -1, listener.fd.rawValue]))
        #expect(waitForExit(child) == .exited(0))
        let words = try String(contentsOfFile: output, encoding: .utf8).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(words == ["\(child.pid)", "\(child.pid)", "1", "web"])
    }

    @Test func onlyMappedFdsReachTheChild() throws {
        let output = scratchFile()
        defer { unlink(output) }
        // An fd opened without O_CLOEXEC must not leak.
        let leaky = open("/dev/null", O_RDONLY)
        defer { close(leaky) }
        let listener = try ListenerBinder.bind(ListenerSpec(parsing: "127.0.0.1:0"), backlog: 16, unixMode: nil)
        defer { ListenerBinder.close([listener]) }
        let child = try ChildProcess.spawn(.init(
            path: "/bin/sh", arguments: ["sh", "-c", "ls /proc/$$/fd > \(output)"], environment: [],
            fdMap: [-1, -1, -1, listener.fd.rawValue, listener.fd.rawValue]))
        #expect(waitForExit(child) == .exited(0))
        let fds = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }.sorted()
        // sh's own fd for the redirect is 1 (stdout replaced by the file); ls opens one more for /proc/$$/fd listing.
        #expect(fds.filter { $0 > 4 && $0 != 255 }.count <= 1, "\(fds)")
        #expect(fds.contains(3) && fds.contains(4))
        #expect(!fds.contains(Int(leaky)) || leaky <= 4)
    }

    @Test func execFailureIsReportedWithItsErrno() throws {
        #expect {
            _ = try ChildProcess.spawn(.init(path: "/nonexistent/program", arguments: ["x"], environment: []))
        } throws: { error in
            guard let error = error as? ChildProcess.SpawnError else { return false }
            return error.stage == "exec" && error.errno == .noSuchFileOrDirectory && error.exitCode == 127
        }
    }

    @Test func childStartsWithDefaultSignalsEvenIfParentIgnoresThem() throws {
        let output = scratchFile()
        defer { unlink(output) }
        let previous = signal(SIGUSR1, SIG_IGN)
        defer { signal(SIGUSR1, previous) }
        let child = try ChildProcess.spawn(.init(
            path: "/bin/sh", arguments: ["sh", "-c", "exec grep -E 'SigIgn|SigBlk' /proc/self/status > \(output)"],
            environment: [], newProcessGroup: true))
        #expect(waitForExit(child) == .exited(0))
        let text = try String(contentsOfFile: output, encoding: .utf8)
        #expect(text.contains("SigBlk:\t0000000000000000"))
        // Read by the exec'd grep itself (sh blocks signals around its own forks); SIGUSR1 (bit 10) must not be inherited as ignored.
        let ignored = text.split(separator: "\n").first { $0.hasPrefix("SigIgn") }.map { UInt64($0.split(separator: "\t")[1], radix: 16) ?? 0 } ?? 0
        #expect(ignored & (1 << (UInt64(SIGUSR1) - 1)) == 0)
    }

    @Test func signalAndReapThroughPidfd() throws {
        let child = try ChildProcess.spawn(.init(path: "/bin/sleep", arguments: ["sleep", "30"], environment: []))
        #expect(child.pidfd != nil, "this kernel has pidfd_open")
        #expect(child.reap() == nil)
        child.signal(SIGTERM)
        #expect(waitForExit(child) == .killed(signal: SIGTERM))
    }
}
