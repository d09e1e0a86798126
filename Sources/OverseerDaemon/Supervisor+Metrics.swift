import OverseerCore
import OverseerProtocol
import OverseerSystem

extension Supervisor {
    /// Serves `--metrics-listen`; a failure is logged and overseerd goes on without it.
    func serveMetrics() {
        guard let listener = metricsListener else { return }
        do {
            metricsServer = try MetricsServer(listener: listener, loop: reactor, logger: logger, render: { [unowned self] in metricsText() },
                                          health: { [unowned self] in health() })
            // A listener taken over was announced by the image that bound it.
            if handover?.metricsListener == nil {
                let url = listener.kind == "unix" ? listener.localAddress : "http://\(listener.localAddress)/metrics"
                logger.log(.info, .metricsEndpoint, "metrics at \(url)")
            }
        } catch {
            logger.log(.error, .metricsEndpoint, "no metrics endpoint on \(listener.localAddress): \(error)")
            ListenerBinder.close([listener])
        }
    }

    /// The metrics now, as `overseerd metrics` and `GET /metrics` give them.
    func metricsText() -> String {
        let serving = supervision.serving.flatMap { representative(of: $0) }
        let now = MonotonicTimer.now
        let wall = Double(Posix.wallClockSeconds)
        var process = ProcFS.ownUsage()
        process.startTimeSeconds = (wall - Double(now - startedAt) / 1e9).rounded()
        var report = MetricsReport(
            servingGeneration: serving?.generation,
            childStartTime: serving.map { (wall - Double(now - $0.startedAt) / 1e9).rounded() },
            binarySHA256: serving?.binaryID, releaseVersion: upgrade?.releaseVersion,
            restarts: restartMetrics, upgrades: upgrade?.metrics, process: process)
        report.orphansReaped = orphans?.reaped
        report.logLinesDropped = LogStream.standardError.droppedLines
        report.manifestExpires = upgrade?.manifestTracking.expires
        report.workers = workerPool
        return report.text + UDPFlowReport.metricsText(udpFlowReports)
    }
}
