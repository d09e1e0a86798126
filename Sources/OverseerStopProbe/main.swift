// OverseerStopProbe: a program that learns of its stop only through
// OverseerChild's stop requests, for the tests.
//
// Before anything else it blocks the stop signals on its main thread, as
// language runtimes do on their worker threads; every thread started later
// inherits that mask (and Swift's cooperative pool blocks them anyway). The
// main thread then sleeps in read(), never in dispatch's sigsuspend, so a stop
// can only get through the library's own signal thread.
//
// It prints "watching pid PID" and sends READY=1 once it watches. On the stop
// request it prints "callback SIG…" (onStopRequest, on the library's thread)
// and "stop SIG…" (the async sequence, on the cooperative pool), sends
// STOPPING=1 when it has a NOTIFY_SOCKET, and exits 0.
#if canImport(Glibc)
import Glibc
#endif
import OverseerChild

OverseerChild.answerUpgradeCheckIfAsked()

// OSP_NO_FREE_FD=1: the fd table is full when the library is asked to watch;
// it must say so (exit 3 with its message), not kill the program.
if getenv("OSP_NO_FREE_FD") != nil {
    let lowest = open("/dev/null", O_RDONLY)
    close(lowest)
    var limit = rlimit(rlim_cur: rlim_t(lowest), rlim_max: rlim_t(lowest))
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    do {
        try OverseerChild.onStopRequest { _ in }
        print("watching")
        exit(0)
    } catch {
        print("error: \(error) [\(error.code)]")
        exit(3)
    }
}

var stopSignals = sigset_t()
sigemptyset(&stopSignals)
for signal in OverseerChild.defaultStopSignals { sigaddset(&stopSignals, signal) }
pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

/// Prints `line` at once: stdout is a pipe in the tests.
func say(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
}

/// One byte per way the stop request arrived.
var arrivals: [Int32] = [-1, -1]
guard pipe(&arrivals) == 0 else { fatalError("pipe: errno \(errno)") }
let arrived = arrivals[1]

try OverseerChild.onStopRequest { [arrived] request in
    say("callback \(request)")
    var byte: UInt8 = 1
    _ = write(arrived, &byte, 1)
}
let requests = try OverseerChild.stopRequests()
Task.detached { [arrived] in
    for await request in requests {
        say("stop \(request)")
        var byte: UInt8 = 2
        _ = write(arrived, &byte, 1)
        break
    }
}
say("watching pid \(getpid())")
_ = OverseerChild.current.ready()

var seen = 0
var byte: UInt8 = 0
while seen < 2 {
    let count = read(arrivals[0], &byte, 1)
    if count == 1 { seen += 1 } else if count < 0 && errno != EINTR { fatalError("read: errno \(errno)") }
}
_ = OverseerChild.current.stopping()
exit(0)
