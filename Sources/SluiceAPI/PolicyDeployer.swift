// Keeps the dataplane running the store's active policy: after every write (and at start) it reads
// the active policy, compiles it, gives it a new generation and publishes it, waiting a bounded
// time for the dataplane to confirm. Runs one deployment at a time so generations stay in order.
import Foundation
import SluicePolicy
import SluiceStore
import Synchronization

/// What is deployed now, reported in write responses, `/ready` and `/api/v1/stats`.
public struct DeploymentState: Sendable, Equatable {
    /// The active policy's id, nil when no policy is active.
    public var policyID: String?
    /// Its deployed version.
    public var version: Int?
    /// Its mode.
    public var mode: PolicyMode?
    /// The generation number of this deployment (0: nothing deployed yet).
    public var generation: UInt64
    /// Whether the policy compiled (false: `error` says why; the previous tables stay in force).
    public var compiled: Bool
    /// `confirmed` (workers run it), `unconfirmed` (no confirmation within the bound), `absent`
    /// (no dataplane on this node) or `failed`.
    public var dataplane: String
    /// Why compilation or publication failed.
    public var error: String?
}

/// The active policy's document, for components that evaluate it themselves (the DNS proxy).
public struct ActivePolicyDocument: Sendable {
    public var policyID: String
    public var version: Int
    public var mode: PolicyMode
    public var config: PolicyConfig
}

/// Compiles and publishes the active policy. An actor: all state changes on its executor.
public actor PolicyDeployer {
    let store: any ManagementStore
    let dataplane: any DataplaneControl
    /// How long a write waits for the dataplane to confirm before answering `unconfirmed`.
    let confirmTimeout: Duration

    /// The latest deployment.
    public private(set) var state = DeploymentState(
        policyID: nil, version: nil, mode: nil, generation: 0, compiled: true, dataplane: "none", error: nil)
    private var generation: UInt64 = 0
    private var running: Task<DeploymentState, Never>?
    private var observers: [@Sendable (ActivePolicyDocument?) async -> Void] = []

    public init(store: any ManagementStore, dataplane: any DataplaneControl, confirmTimeout: Duration = .seconds(2)) {
        self.store = store
        self.dataplane = dataplane
        self.confirmTimeout = confirmTimeout
    }

    /// Calls `observer` with every newly deployed active policy (nil: none active) from now on, in
    /// deployment order, before the dataplane is asked to publish it; a policy that fails to compile is
    /// not passed on (the previous one stays in force, as in the dataplane).
    public func addObserver(_ observer: @escaping @Sendable (ActivePolicyDocument?) async -> Void) {
        observers.append(observer)
    }

    /// Brings the dataplane in line with the store's active policy and returns the resulting state.
    /// Calls queue behind each other (the actor is reentrant across the awaits inside). `parsed`:
    /// a body the caller has just validated and its document; when the active policy's stored body
    /// is that text, its document is used instead of parsing the text again (a 10,000-rule policy
    /// takes a few hundred milliseconds to parse).
    public func reconcile(parsed: (body: String, config: PolicyConfig)? = nil) async -> DeploymentState {
        let previous = running
        let task = Task { () -> DeploymentState in
            _ = await previous?.value
            return await self.deployActive(parsed: parsed)
        }
        running = task
        return await task.value
    }

    private func deployActive(parsed: (body: String, config: PolicyConfig)?) async -> DeploymentState {
        let active: StoredPolicy?
        do {
            active = try await store.activePolicy()
        } catch {
            state.error = "store: \(error)"
            return state
        }
        if state.generation > 0, state.policyID == active?.id, state.version == active?.version,
            state.dataplane != "unconfirmed", state.dataplane != "failed"
        {
            return state
        }
        generation += 1
        var next = DeploymentState(
            policyID: active?.id, version: active?.version, mode: active?.mode, generation: generation,
            compiled: true, dataplane: dataplane.isPresent ? "unconfirmed" : "absent", error: nil)
        var deployment: PolicyDeployment?
        var document: ActivePolicyDocument?
        if let active {
            do {
                // One document serves the compiler and the observers.
                let config: PolicyConfig
                if let parsed, parsed.body == active.body {
                    config = parsed.config
                } else {
                    config = try PolicyCompilation.parse(body: active.body)
                }
                deployment = PolicyDeployment(
                    policyID: active.id, version: active.version, mode: active.mode, generation: generation,
                    compiled: PolicyCompiler.compile(mode: active.mode, policy: config))
                document = ActivePolicyDocument(
                    policyID: active.id, version: active.version, mode: active.mode, config: config)
            } catch {
                next.compiled = false
                next.dataplane = "failed"
                next.error = "compile: \(error)"
                state = next
                return next
            }
        }
        if active == nil || document != nil {
            for observer in observers { await observer(document) }
        }
        if dataplane.isPresent {
            switch await publishWithinBound(deployment) {
            case .some(nil): next.dataplane = "confirmed"
            case .some(let error?):
                next.dataplane = "failed"
                next.error = "publish: \(error)"
            case nil: next.dataplane = "unconfirmed"
            }
        }
        state = next
        return next
    }

    /// nil: no answer within the bound; .some(nil): confirmed; .some(error): failed. The publish
    /// itself is not cancelled by the timeout: the dataplane may still confirm later.
    private func publishWithinBound(_ deployment: PolicyDeployment?) async -> (any Error)?? {
        let dataplane = self.dataplane
        let timeout = confirmTimeout
        let once = Mutex(false)
        return await withCheckedContinuation { (continuation: CheckedContinuation<(any Error)??, Never>) in
            let finish: @Sendable ((any Error)??) -> Void = { result in
                let first = once.withLock { done in
                    defer { done = true }
                    return !done
                }
                if first { continuation.resume(returning: result) }
            }
            Task {
                do {
                    try await dataplane.publish(deployment)
                    finish(.some(nil))
                } catch {
                    finish(.some(error))
                }
            }
            Task {
                try? await Task.sleep(for: timeout)
                finish(nil)
            }
        }
    }
}
