import OverseerCore

extension Supervisor {
    /// The service's health now (`overseerd health`, `GET /healthz`, `GET /readyz`).
    func health() -> ServiceHealth {
        let serving = supervision.serving.flatMap { generation in representative(of: generation).map { (generation, $0.process.pid) } }
        return ServiceHealth(ServiceHealth.Facts(
            serving: serving, servingStopping: supervision.serving.map { supervision.isStopping($0) } ?? false,
            candidate: supervision.candidate, rollingBack: recoveringFromRollback))
    }
}
