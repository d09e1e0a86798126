import CSodium
import Glibc
import OverseerProtocol

/// `overseerd-fetch`: one poll of a network source, reported as one line of JSON on stdout.
@main
enum FetchTool {
    static func main() {
        // A closed pipe must be an error to report, not a silent death. SIGTERM keeps its
        // default action: the daemon removes the partial file.
        signal(SIGPIPE, SIG_IGN)
        let arguments = Array(CommandLine.arguments.dropFirst())
        let report: FetchReport
        var status = FetchReport.ExitCode.success
        do throws(FetchFailure) {
            switch try FetchOptions.parse(arguments) {
            case .help:
                print(helpText)
                exit(0)
            case let .fetch(options):
                guard sodium_init() >= 0 else {
                    throw FetchFailure(.io, "overseerd-fetch: libsodium failed to initialise")
                }
                let output = try OutputDescriptor(fd: options.outputFD)
                report = try Fetcher(options: options, output: output).run()
            }
        } catch {
            report = error.report
            status = error.exitCode
        }
        print(report.encoded)
        exit(status)
    }
}
