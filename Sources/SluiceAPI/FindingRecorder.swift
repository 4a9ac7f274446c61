// Audit findings on their way from the dataplane to the store: aggregated in memory by key (a
// bounded dictionary, so a flood of distinct flows cannot grow memory without limit) and flushed
// to the store every few seconds, at shutdown, and before every read of the findings route.
import Foundation
import ServiceLifecycle
import SluiceStore

/// The in-memory side of audit findings. An actor: `record` may be called from any task (the
/// dataplane's event collector), never from a packet worker directly.
public actor FindingRecorder: Service {
    let store: any ManagementStore
    /// The most distinct keys held between flushes; new keys beyond it are dropped and counted.
    public let maxPending: Int
    let flushInterval: Duration
    private var pending: [String: AuditFinding] = [:]
    /// Observations dropped because the pending map was full.
    public private(set) var dropped: UInt64 = 0

    public init(store: any ManagementStore, maxPending: Int = 10_000, flushInterval: Duration = .seconds(5)) {
        self.store = store
        self.maxPending = maxPending
        self.flushInterval = flushInterval
    }

    /// Adds one observation.
    public func record(_ finding: AuditFinding) {
        let key = finding.aggregationKey
        if var existing = pending[key] {
            existing.merge(finding)
            pending[key] = existing
        } else if pending.count < maxPending {
            pending[key] = finding
        } else {
            dropped += 1
        }
    }

    /// Writes what is pending to the store. On failure the observations stay pending.
    public func flush() async throws {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = [:]
        do {
            try await store.mergeFindings(Array(batch.values))
        } catch {
            for (key, finding) in batch {
                if var newer = pending[key] {
                    newer.merge(finding)
                    pending[key] = newer
                } else {
                    pending[key] = finding
                }
            }
            throw error
        }
    }

    /// Flushes periodically until graceful shutdown, then once more.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: self.flushInterval)
                try? await self.flush()
            }
        }
        try await flush()
    }
}
