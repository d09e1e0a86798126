import Glibc
import OverseerCore

/// Finds the program to run the way a shell does.
public enum ProgramLocator {
    /// Why a program cannot be run, with the exit code a shell would give.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
        /// 127 not found, 126 found but not executable.
        public let exitCode: Int32
    }

    /// A name with a `/` is taken as a path; otherwise each PATH entry is tried in order.
    public static func resolve(_ program: String, path searchPath: String?) throws(Failure) -> String {
        if program.contains("/") {
            try check(program)
            return program
        }
        let directories = (searchPath ?? "/usr/local/bin:/usr/bin:/bin")
            .split(separator: ":", omittingEmptySubsequences: false)
            .map { $0.isEmpty ? "." : String($0) }
        var firstUnexecutable: Failure?
        for directory in directories {
            let candidate = directory.hasSuffix("/") ? directory + program : directory + "/" + program
            do {
                try check(candidate)
                return candidate
            } catch where error.exitCode == OverseerExitCode.cannotExecute {
                firstUnexecutable = firstUnexecutable ?? error
            } catch {
                continue
            }
        }
        if let firstUnexecutable { throw firstUnexecutable }
        throw Failure(description: "cannot run \(program): not found on PATH — give its full path or fix PATH",
                      exitCode: OverseerExitCode.notFound)
    }

    private static func check(_ path: String) throws(Failure) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw Failure(description: "cannot run \(path): no such file — check the path",
                          exitCode: OverseerExitCode.notFound)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw Failure(description: "cannot run \(path): it is a directory — give the program inside it",
                          exitCode: OverseerExitCode.cannotExecute)
        }
        guard access(path, X_OK) == 0, (info.st_mode & 0o111) != 0 else {
            throw Failure(description: "cannot run \(path): permission denied — make it executable (chmod +x)",
                          exitCode: OverseerExitCode.cannotExecute)
        }
    }
}
