/// The stable name of each kind of line overseerd logs: what an alert or a
/// query keys on (`"event"` with `--log-format json`, `OVERSEERD_EVENT=` in the
/// journal) instead of on the wording, which may change. A name, once released,
/// keeps its meaning; docs/OPERATIONS.md lists them all.
public enum DaemonEvent: String, CaseIterable, Sendable {
    // MARK: Start-up, configuration, control

    /// A listening socket is ready: bound, inherited from systemd, or kept across a re-exec.
    case listening
    /// The control socket is up, or could not be made.
    case controlSocket = "control_socket"
    /// A control connection was refused (wrong user) or accepting paused (fd table full).
    case controlRefused = "control_refused"
    /// A setting or variable was ignored or weakens a check; overseerd goes on.
    case configurationWarning = "configuration_warning"
    /// A setting cannot be honoured (e.g. the upgrade settings after a re-exec); that feature is off.
    case configurationError = "configuration_error"
    /// The metrics endpoint (--metrics-listen) is up, could not be made, or is not handed over.
    case metricsEndpoint = "metrics_endpoint"
    /// The metrics endpoint stopped accepting for a moment (connection cap or fd table full).
    case metricsRefused = "metrics_refused"
    /// The systemd watchdog is on (interval, relayed or not).
    case watchdogConfigured = "watchdog_configured"
    /// Something overseerd needs from the system failed (pidfd, epoll, signalfd); the line says what.
    case internalError = "internal_error"
    /// Lines overseerd could not write to a stderr nobody reads were dropped; this line says how many.
    case logLinesDropped = "log_lines_dropped"

    // MARK: Generations

    /// A generation's process was forked and executed.
    case generationStarted = "generation_started"
    /// A generation could not be started (program missing, fork failed, …).
    case spawnFailed = "spawn_failed"
    /// A generation became ready (and serves).
    case generationReady = "generation_ready"
    /// A generation was not ready within --ready-timeout and nothing else serves.
    case readyTimeout = "ready_timeout"
    /// A generation exited on its own (not asked to stop).
    case generationExited = "generation_exited"
    /// A generation asked to stop has exited.
    case generationStopped = "generation_stopped"
    /// A generation did not stop within --stop-timeout: SIGKILL.
    case stopTimeout = "stop_timeout"
    /// A generation sent STATUS= (the text, escaped).
    case childStatus = "child_status"
    /// A generation sent STOPPING=1.
    case childStopping = "child_stopping"
    /// A notify datagram was ignored (wrong sender, too long, too many fds) or the socket is missing.
    case notifyRejected = "notify_rejected"
    /// An exited generation left processes in its process group; they get a grace period.
    case leftoversFound = "leftovers_found"
    /// Processes a generation left were killed after their grace period.
    case leftoversKilled = "leftovers_killed"
    /// overseerd reaps orphans: it is PID 1 of its PID namespace, or a subreaper (--subreaper).
    case reapingOrphans = "reaping_orphans"
    /// A process reparented to overseerd (not a generation, not a helper) exited and was reaped (debug).
    case orphanReaped = "orphan_reaped"
    /// As PID 1, overseerd stopped what was left in its PID namespace before exiting.
    case namespaceEmptied = "namespace_emptied"
    /// The program's SHA-256 (OVERSEER_BINARY_ID) could not be computed.
    case binaryHashFailed = "binary_hash_failed"
    /// The program was hashed for OVERSEER_BINARY_ID (debug).
    case binaryHashed = "binary_hashed"
    /// OVERSEER_BINARY_ID was taken from the hash cache: the file is unchanged (debug).
    case binaryHashReused = "binary_hash_reused"

    // MARK: Signals and restarts

    /// A signal was passed on to the serving generation (debug).
    case signalForwarded = "signal_forwarded"
    /// A signal arrived while no generation could take it (debug).
    case signalNotForwarded = "signal_not_forwarded"
    /// The kernel raised a signal against overseerd itself (SIGXFSZ, SIGXCPU, SIGSYS; at most once a minute each): kept, not forwarded.
    case signalKept = "signal_kept"
    /// A restart began: a new generation is starting beside the serving one.
    case restartStarted = "restart_started"
    /// A restart waits for the starting generation (queued or coalesced).
    case restartQueued = "restart_queued"
    /// A restart asked for while overseerd stops.
    case restartIgnored = "restart_ignored"
    /// The new generation is ready; the old one is being stopped.
    case restartSucceeded = "restart_succeeded"
    /// The new generation failed (exited, not ready in time, could not start); the old one serves on.
    case restartFailed = "restart_failed"
    /// overseerd is stopping its generations (a stop signal, or nothing left serving).
    case stopping

    // MARK: Re-exec

    /// overseerd checks its new image and re-executes into it.
    case reexecStarted = "reexec_started"
    /// A re-exec was refused (a restart or an upgrade is under way, or the new image said no).
    case reexecRefused = "reexec_refused"
    /// A re-exec failed; this image goes on.
    case reexecFailed = "reexec_failed"
    /// This image took over from the previous one.
    case tookOver = "took_over"

    // MARK: Upgrades

    /// Where upgrades come from and which checks they pass.
    case upgradesConfigured = "upgrades_configured"
    /// A poll of the source failed; the next one is scheduled with backoff.
    case upgradePollFailed = "upgrade_poll_failed"
    /// A poll found the installed binary, or one rejected before (debug).
    case upgradeUnchanged = "upgrade_unchanged"
    /// A new binary was fetched and is being verified.
    case upgradeFetched = "upgrade_fetched"
    /// A new binary failed a check (checksum, signature, start check) and is remembered as rejected.
    case upgradeRejected = "upgrade_rejected"
    /// An upgrade could not go on (I/O error, disk full, …); the installed binary stays.
    case upgradeAbandoned = "upgrade_abandoned"
    /// A verified binary was installed.
    case upgradeInstalled = "upgrade_installed"
    /// Installing failed; it is tried again from the staged file.
    case upgradeInstallFailed = "upgrade_install_failed"
    /// The restart onto the new binary succeeded.
    case upgradeSucceeded = "upgrade_succeeded"
    /// The restart onto the new binary failed; the previous binary is put back before it served.
    case upgradeFailed = "upgrade_failed"
    /// A staged-rollout decision: take, wait, or go back to a release (--manifest).
    case rolloutDecision = "rollout_decision"
    /// A binary on probation failed (exited or stopped pinging): it is rolled back.
    case probationFailed = "probation_failed"
    /// A new binary serves and is on probation (--probation).
    case probationStarted = "probation_started"
    /// A binary served its probation.
    case probationPassed = "probation_passed"
    /// The previous binary was put back (after a failed probation or a yanked release).
    case upgradeRolledBack = "upgrade_rolled_back"
    /// Putting the previous binary back failed.
    case rollbackFailed = "rollback_failed"
    /// A rejected binary was forgotten (`overseerd forget`).
    case binaryForgotten = "binary_forgotten"
    /// overseerd's state (upgrade state, the program's hash cache) could not be read or written, or has no directory.
    case stateWarning = "state_warning"
    /// The upgrade state was read at start (rejections, probation).
    case stateLoaded = "state_loaded"
    /// Staging files an earlier overseerd left were removed.
    case stagingCleaned = "staging_cleaned"
    /// The watched file's directory cannot be watched with inotify; polling instead.
    case watchFallback = "watch_fallback"
    /// A helper (overseerd-fetch, a check) ran past its time limit and was killed.
    case helperTimeout = "helper_timeout"
    /// Something the upgrade machine did not expect in its state (debug).
    case upgradeIgnored = "upgrade_ignored"
    /// A verified release waits, staged: the installed binary is on trial (or being rolled back); it is installed once that has ended.
    case upgradeHeld = "upgrade_held"
    /// A manifest's sequence is below the highest taken: an old manifest replayed; refused.
    case manifestReplayed = "manifest_replayed"
    /// A manifest's sequence was taken before with other bytes; refused.
    case manifestConflict = "manifest_conflict"
    /// A manifest's `expires` has passed (or the one last taken has, while the server sends nothing newer); nothing is installed.
    case manifestExpired = "manifest_expired"
    /// A manifest refused for its signatures, its name, a missing field or a malformed key rotation.
    case manifestRefused = "manifest_refused"
    /// A manifest installed new keys (a rotation), or `overseerd forget-keys` went back to the command line's.
    case manifestKeysChanged = "manifest_keys_changed"

    // MARK: UDP flows (--udp-flows)

    /// A UDP listener keeps each flow with the generation that took it (a BPF program steers them).
    case udpFlowsSteered = "udp_flows_steered"
    /// Steering cannot be had (no CAP_BPF, an old kernel, seccomp, an inherited socket without
    /// SO_REUSEPORT): the UDP listeners named share one socket, as with --udp-flows shared.
    case udpFlowsShared = "udp_flows_shared"
    /// A step of the steering failed while running (a socket or a map update); the line says what became of the flows.
    case udpFlowsError = "udp_flows_error"

    // MARK: Workers (--workers N)

    /// A worker process was forked and executed (its worker number and generation are in the line).
    case workerStarted = "worker_started"
    /// A worker said READY=1 (or its --ready delay passed).
    case workerReady = "worker_ready"
    /// A worker exited without being asked, or failed before it was ready.
    case workerExited = "worker_exited"
    /// A worker asked to stop has exited.
    case workerStopped = "worker_stopped"
    /// A worker that exited starts again after this delay (doubling up to --worker-restart-max-delay).
    case workerRestartScheduled = "worker_restart_scheduled"
    /// Every worker exited within --worker-crash-window and none is ready: overseerd gives the generation up (and exits as its last worker did).
    case workersCrashed = "workers_crashed"
    /// A rolling restart began: the workers move to the new generation a batch at a time.
    case rollStarted = "roll_started"
}
