/// overseerd's metrics at one moment, and their exposition text: what
/// `overseerd metrics` prints and `GET /metrics` answers. Every family is
/// present in every scrape (a counter at 0 before its first event), so that
/// alerts on `increase()` see the first failure too.
public struct MetricsReport: Sendable {
    /// The serving generation, if one serves.
    public var servingGeneration: Int?
    /// When the serving generation's child started, in seconds since the Unix epoch.
    public var childStartTime: Double?
    /// The SHA-256 of the serving generation's binary.
    public var binarySHA256: String?
    /// Its release version (from a manifest), if known.
    public var releaseVersion: String?
    public var restarts: RestartMetrics
    /// Nil without `--fetch`/`--manifest`: the upgrade families are then left out.
    public var upgrades: UpgradeMetrics?
    /// overseerd's own use of the machine.
    public var process: ProcessUsage
    /// Orphans reaped, when overseerd reaps them (PID 1 of a namespace, `--subreaper`); nil leaves the family out.
    public var orphansReaped: Int?
    /// Lines overseerd dropped because its stderr was full (`LogStream`).
    public var logLinesDropped = 0
    /// When the newest signed release manifest expires, in seconds since the Unix epoch (`--manifest`, its `expires`).
    public var manifestExpires: Int64?
    /// With `--workers`: the pool (its workers by state, its slots' restarts); nil with one child.
    public var workers: WorkerPool?

    public init(servingGeneration: Int?, childStartTime: Double?, binarySHA256: String?, releaseVersion: String?,
                restarts: RestartMetrics, upgrades: UpgradeMetrics?, process: ProcessUsage) {
        self.servingGeneration = servingGeneration
        self.childStartTime = childStartTime
        self.binarySHA256 = binarySHA256
        self.releaseVersion = releaseVersion
        self.restarts = restarts
        self.upgrades = upgrades
        self.process = process
    }

    /// The Prometheus text format (0.0.4).
    public var text: String {
        var out = MetricsText()
        out.single("overseerd_generation", .gauge, help: "The generation serving now (0 while none serves).",
                   Double(servingGeneration ?? 0))
        if let childStartTime {
            out.single("overseerd_child_start_time_seconds", .gauge,
                       help: "Start time of the serving generation's child since the Unix epoch, in seconds.", childStartTime)
        }
        if let binarySHA256 {
            out.family("overseerd_binary_info", .gauge, help: "The serving generation's binary: its SHA-256 and release version.")
            out.sample("overseerd_binary_info", [("sha256", binarySHA256), ("version", releaseVersion ?? "")], UInt64(1))
        }
        out.family("overseerd_restarts_total", .counter, help: "Graceful restarts, by result.")
        out.sample("overseerd_restarts_total", [("result", "succeeded")], restarts.succeeded)
        out.sample("overseerd_restarts_total", [("result", "failed")], restarts.failed)
        out.histogram("overseerd_restart_duration_seconds",
                      help: "From a restart's request to the old generation's exit (or to the failure).",
                      restarts.restartDurations)
        out.histogram("overseerd_ready_duration_seconds", help: "From a generation's spawn to its readiness.", restarts.readyDurations)
        out.family("overseerd_child_exits_total", .counter, help: "Child exits: status (it exited) or signal (it was killed).")
        out.sample("overseerd_child_exits_total", [("how", "status")], restarts.exitedWithStatus)
        out.sample("overseerd_child_exits_total", [("how", "signal")], restarts.killedBySignal)
        out.single("overseerd_log_lines_dropped_total", .counter,
                   help: "Log lines overseerd dropped because its stderr was full (nobody reading it).", Double(logLinesDropped))
        if let upgrades {
            out.family("overseerd_upgrades_total", .counter, help: "New binaries: installed, rejected by a check, or rolled back.")
            out.sample("overseerd_upgrades_total", [("result", "installed")], upgrades.installed)
            out.sample("overseerd_upgrades_total", [("result", "rejected")], upgrades.rejected)
            out.sample("overseerd_upgrades_total", [("result", "rolled_back")], upgrades.rolledBack)
            out.family("overseerd_upgrade_polls_total", .counter, help: "Polls of the upgrade source, by what they found.")
            for result in UpgradeMetrics.PollResult.allCases {
                out.sample("overseerd_upgrade_polls_total", [("result", result.rawValue)], upgrades.polls[result] ?? 0)
            }
        }
        if let manifestExpires {
            out.single("overseerd_manifest_expires_timestamp_seconds", .gauge,
                       help: "When the newest release manifest expires (its \"expires\"), since the Unix epoch, in seconds.", Double(manifestExpires))
        }
        if let orphansReaped {
            out.family("overseerd_orphans_reaped_total", .counter, help: "Processes reparented to overseerd (PID 1 or subreaper) that it reaped.")
            out.sample("overseerd_orphans_reaped_total", [], UInt64(orphansReaped))
        }
        if let bytes = process.residentBytes {
            out.single("process_resident_memory_bytes", .gauge, help: "Resident memory size of overseerd in bytes.", Double(bytes))
        }
        if let fds = process.openFDs {
            out.single("process_open_fds", .gauge, help: "Number of open file descriptors of overseerd.", Double(fds))
        }
        if let limit = process.maxFDs {
            out.single("process_max_fds", .gauge, help: "Maximum number of open file descriptors of overseerd.", Double(limit))
        }
        if let cpu = process.cpuSeconds {
            out.single("process_cpu_seconds_total", .counter, help: "User and system CPU time overseerd spent, in seconds.", cpu)
        }
        if let start = process.startTimeSeconds {
            out.single("process_start_time_seconds", .gauge, help: "Start time of overseerd since the Unix epoch, in seconds.", start)
        }
        if let workers {
            out.family("overseerd_workers", .gauge, help: "Worker processes (--workers), by state: starting, ready or stopping.")
            for state in [WorkerPool.ProcessState.starting, .ready, .stopping] {
                out.sample("overseerd_workers", [("state", "\(state)")], UInt64(workers.count(state)))
            }
            out.family("overseerd_worker_restarts_total", .counter, help: "Workers started again in a slot after one exited, by worker number.")
            for slot in workers.slots {
                out.sample("overseerd_worker_restarts_total", [("worker", String(slot.worker))], UInt64(slot.restarts))
            }
        }
        return out.text
    }
}
