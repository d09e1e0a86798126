"""Shared helpers for overseerd's benchmarks (zero-downtime, restart-latency, soak, startup, footprint,
upgrade-latency, download-memory, soak-long).

Binaries: OVERSEERD_BIN and TEST_CHILD_BIN, by default .build-release/release/{overseerd,OverseerTestChild};
when a default one is missing it is built with `swift build -c release --scratch-path .build-release`
(a scratch path of its own, so it never disturbs a debug build in .build).

Everything here talks to 127.0.0.1 only and stops what it started, on normal exit, on an exception,
and on SIGINT/SIGTERM/SIGHUP (see `install_cleanup`).
"""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
RELEASE_DIR = os.path.join(REPO, ".build-release", "release")

# ---------------------------------------------------------------- environment


def env_int(name, default):
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        die(f"{name}={value!r} is not a whole number")


def env_float(name, default):
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return float(value)
    except ValueError:
        die(f"{name}={value!r} is not a number")


def die(message):
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(2)


def require_tools(*names):
    """Exit with a clear message naming every missing tool."""
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        hint = " (scripts/setup installs them)" if os.path.exists(os.path.join(REPO, "scripts", "setup")) else \
            " (Debian: apt-get install " + " ".join(missing) + ")"
        die("missing tool(s): " + ", ".join(missing) + hint)


def binaries():
    """(overseerd, OverseerTestChild) as absolute paths; builds the release ones if needed."""
    overseerd = os.environ.get("OVERSEERD_BIN") or os.path.join(RELEASE_DIR, "overseerd")
    child = os.environ.get("TEST_CHILD_BIN") or os.path.join(RELEASE_DIR, "OverseerTestChild")
    missing = [path for path in (overseerd, child) if not os.access(path, os.X_OK)]
    if missing:
        overridden = [p for p in missing if p in (os.environ.get("OVERSEERD_BIN"), os.environ.get("TEST_CHILD_BIN"))]
        if overridden:
            die("not executable: " + ", ".join(overridden))
        if shutil.which("swift") is None:
            die("missing " + ", ".join(missing) + " and no `swift` on PATH to build them")
        print("# building release binaries: swift build -c release --scratch-path .build-release", file=sys.stderr)
        started = time.monotonic()
        result = subprocess.run(["swift", "build", "-c", "release", "--scratch-path", ".build-release"], cwd=REPO)
        if result.returncode != 0:
            die("release build failed")
        print(f"# release build took {time.monotonic() - started:.1f} s", file=sys.stderr)
    return os.path.abspath(overseerd), os.path.abspath(child)


def machine_line():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    return f"machine: nproc={os.cpu_count()} ({os.sched_getaffinity(0).__len__()} usable), cpu={cpu}, " \
           f"kernel={os.uname().release}, loadavg={load}, date={time.strftime('%Y-%m-%d %H:%M:%S %z')}"


def binary_line(path):
    return f"binary: {path} ({os.path.getsize(path)} bytes, mtime {time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(path)))})"


# ---------------------------------------------------------------- statistics


def percentile(values, fraction):
    """Nearest-rank percentile (fraction in 0...1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))  # ceil
    return ordered[min(rank, len(ordered)) - 1]


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return float("nan")
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


# ---------------------------------------------------------------- cleanup

_cleanups = []


def on_exit(function):
    """Run `function` at exit (last registered first), whatever the way out."""
    _cleanups.append(function)
    return function


def _run_cleanups():
    while _cleanups:
        function = _cleanups.pop()
        try:
            function()
        except Exception as error:  # keep cleaning up
            print(f"# cleanup: {error}", file=sys.stderr)


def install_cleanup():
    """The `trap ... EXIT INT TERM HUP` of these scripts."""
    atexit.register(_run_cleanups)

    def stop(signo, _frame):
        print(f"\n# {signal.Signals(signo).name}: cleaning up", file=sys.stderr)
        sys.exit(128 + signo)

    for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, stop)


def temp_dir(prefix):
    path = tempfile.mkdtemp(prefix=prefix)
    # KEEP_LOGS=1 (in the environment, or set by the script when something failed) keeps it.
    on_exit(lambda: None if os.environ.get("KEEP_LOGS") == "1" else shutil.rmtree(path, ignore_errors=True))
    return path


def stop_process(process, timeout=10.0):
    """SIGTERM, wait, SIGKILL: only this process (overseerd forwards to its children)."""
    if process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---------------------------------------------------------------- network


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path="/", timeout=2.0):
    """One GET on a fresh connection with Connection: close: (status, {header: value}, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        raise ConnectionError(f"no HTTP answer (got {data[:60]!r})")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


# ---------------------------------------------------------------- overseerd


class Overseerd:
    """One overseerd run with its stderr in a log file that can be waited on."""

    LISTENING = re.compile(r"overseerd: listening on 127\.0\.0\.1:(\d+) ")
    STARTED = re.compile(r"overseerd: generation (\d+) started: pid (\d+)")
    CUTOVER = re.compile(r"overseerd: generation (\d+) is ready; stopping generation (\d+)")
    FIRST_READY = re.compile(r"overseerd: generation 1 is ready$", re.M)
    STOPPED = re.compile(r"overseerd: generation (\d+) stopped")
    FAILED = re.compile(r"overseerd: (?:error: )?restart failed")
    ATTENTION = re.compile(r"overseerd: (?:warning|error): .*")

    def __init__(self, overseerd, program, *, ready="notify", port=0, env=None, extra_args=(), log_dir, name="overseerd"):
        self.log_path = os.path.join(log_dir, f"{name}.stderr")
        self.out_path = os.path.join(log_dir, f"{name}.stdout")
        self._err = open(self.log_path, "wb")
        self._out = open(self.out_path, "wb")
        args = [overseerd, "-l", f"127.0.0.1:{port}", "--ready", ready, *extra_args, "--", *program]
        self.command = args
        self._read = 0
        self._text = ""
        self._partial = b""
        self.process = subprocess.Popen(args, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                        env={**os.environ, **(env or {})})
        on_exit(self.stop)
        self.pid = self.process.pid
        match = self.wait_for(self.LISTENING, timeout=10)
        self.port = int(match.group(1))

    def log(self):
        """Everything overseerd wrote on stderr so far (read incrementally)."""
        with open(self.log_path, "rb") as f:
            f.seek(self._read)
            more = f.read()
        self._read += len(more)
        # Only whole lines: overseerd writes each line with one write(), but a read may land mid-way.
        self._partial += more
        cut = self._partial.rfind(b"\n") + 1
        if cut:
            self._text += self._partial[:cut].decode("utf-8", errors="replace")
            self._partial = self._partial[cut:]
        return self._text

    def wait_for(self, pattern, timeout=10.0, start=0, poll=0.002):
        """Waits until `pattern` matches in the log at or after offset `start`; returns the match
        (its .end() is where to start looking for the next one)."""
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self.log(), start)
            if match:
                return match
            if self.process.poll() is not None:
                match = pattern.search(self.log(), start)
                if match:
                    return match
                raise RuntimeError(f"overseerd exited ({self.process.returncode}) before {pattern.pattern!r}; log tail:\n"
                                   + self.tail())
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern.pattern!r} within {timeout} s; log tail:\n" + self.tail())
            time.sleep(poll)

    def count(self, pattern):
        return len(pattern.findall(self.log()))

    def tail(self, lines=20):
        return "\n".join(self.log().splitlines()[-lines:])

    def restart(self):
        os.kill(self.pid, signal.SIGUSR2)

    def stop(self):
        stop_process(self.process)
        for f in (self._err, self._out):
            if not f.closed:
                f.close()


# ---------------------------------------------------------------- /proc


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def proc_stat(pid):
    """(state, ppid) from /proc/PID/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def all_pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children_of(pid):
    """[(child pid, state)] of every process whose parent is `pid`."""
    result = []
    for candidate in all_pids():
        stat = proc_stat(candidate)
        if stat and stat[1] == pid:
            result.append((candidate, stat[0]))
    return result


def pids_with_marker(marker):
    """Processes whose environment holds OTC_MARKER=marker (the ones this run started)."""
    needle = f"OTC_MARKER={marker}".encode()
    found = []
    for candidate in all_pids():
        try:
            with open(f"/proc/{candidate}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(candidate)
        except OSError:
            pass
    return found


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def smaps_rollup(pid):
    """{field: kB} from /proc/PID/smaps_rollup (Rss, Pss, Pss_Anon, Pss_File, Anonymous, ...)."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, value = line.partition(":")
            parts = value.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[name.strip()] = int(parts[0])
    return fields


def memory(pid):
    """overseerd's memory as the benchmarks report it, in kB: VmRSS, VmHWM, RssAnon, RssFile
    (/proc/PID/status) and Pss, Pss_Anon, Pss_File (/proc/PID/smaps_rollup); plus fds and threads."""
    status = proc_status(pid)
    rollup = smaps_rollup(pid)
    result = {name: int(status[name].split()[0]) for name in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
    result.update({name: rollup.get(name, 0) for name in ("Pss", "Pss_Anon", "Pss_File")})
    result["fds"] = fd_count(pid)
    result["threads"] = int(status["Threads"])
    return result


PID_HEADER = re.compile(rb"\r\nX-Pid: (\d+)\r\n", re.I)


def poll_for_pid(port, accept, deadline, on_attempt=None):
    """Fresh connections (Connection: close) in a tight loop until an answer's X-Pid satisfies
    `accept`; returns (monotonic ns of that answer, pid, attempts). Refused or reset connections
    are retried at once. `on_attempt()`, if given, runs after each attempt (e.g. to read a log)."""
    attempts = 0
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    while True:
        attempts += 1
        if on_attempt:
            on_attempt()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no accepted answer on port {port} after {attempts} attempts")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2.0)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            continue
        finally:
            s.close()
        answered = time.monotonic_ns()
        match = PID_HEADER.search(data)
        if match and accept(int(match.group(1))):
            return answered, int(match.group(1)), attempts


PROXY_VARIABLES = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy",
                   "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "ALL_PROXY", "NO_PROXY")


def drop_proxy_variables():
    """Everything here talks to 127.0.0.1: no proxy for this process nor anything it starts."""
    for name in PROXY_VARIABLES:
        os.environ.pop(name, None)


def fmt_ms(values):
    """'median M ms, p90 P ms, min, max (n)' of a list of milliseconds."""
    if not values:
        return "no values"
    return (f"median {median(values):.2f} ms, p90 {percentile(values, 0.9):.2f} ms, "
            f"min {min(values):.2f} ms, max {max(values):.2f} ms (n={len(values)})")


def go_binary(log_dir):
    """examples/go, built once per run of a script into log_dir (or GO_BIN)."""
    if os.environ.get("GO_BIN"):
        return os.path.abspath(os.environ["GO_BIN"])
    output = os.path.join(log_dir, "go-hello")
    if not os.path.exists(output):
        require_tools("go")
        result = subprocess.run(["go", "build", "-o", output, "."], cwd=os.path.join(REPO, "examples", "go"),
                                env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": ""})
        if result.returncode != 0:
            die("go build of examples/go failed")
    return output


def smaps_by_mapping(pid):
    """{mapping: {"Rss": kB, "Pss": kB}} from /proc/PID/smaps, summed per file (anonymous
    mappings as "[anon]"), largest Rss first."""
    totals = {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                name = head[5] if len(head) >= 6 else "[anon]"
                totals.setdefault(name, {"Rss": 0, "Pss": 0})
            elif name and head and head[0] in ("Rss:", "Pss:"):
                totals[name][head[0][:-1]] += int(head[1])
    return dict(sorted(totals.items(), key=lambda item: -item[1]["Rss"]))


LAUNCHER = os.path.join(BENCH_DIR, "children", "launch_fd3.py")


def direct_start_ms(program, env, python=None, timeout=10.0):
    """The child's own start: `program` (argv list) socket-activated by children/launch_fd3.py on a
    free port, from CLOCK_MONOTONIC just before its execve to the first HTTP answer (fresh
    connections polled in a tight loop; the answer's X-Pid must be the launched pid). In ms."""
    port = free_port()
    read_end, write_end = os.pipe()
    launcher = subprocess.Popen([python or sys.executable, LAUNCHER, f"127.0.0.1:{port}", *program],
                                env={**env, "LAUNCH_REPORT_FD": str(write_end)}, pass_fds=(write_end,),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(write_end)
    try:
        answered, pid, _ = poll_for_pid(port, lambda p: True, time.monotonic() + timeout)
        with os.fdopen(read_end, "rb") as report:
            exec_at = int(report.read().strip())
        if pid != launcher.pid:
            raise RuntimeError(f"direct start: answer from pid {pid}, launched {launcher.pid}")
        return (answered - exec_at) / 1e6
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(timeout=10)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
