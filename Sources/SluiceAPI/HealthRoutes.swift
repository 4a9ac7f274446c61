// `/health` (the process answers) and `/ready` (named checks: store, policy compiled and
// published, dataplane, DNS proxy), the two routes open without a token. A component that does not
// exist on this node (`--dataplane none`) reports `absent`, which does not make the node unready.
import Foundation
import Hummingbird
import SluiceStore

struct HealthRoutes {
    let deps: APIDependencies

    func register(on router: Router<SluiceRequestContext>) {
        router.get("health") { _, _ in HealthJSON(status: "ok") }
        router.get("ready", use: ready)
    }

    @Sendable func ready(_ request: Request, context: SluiceRequestContext) async throws -> Response {
        var checks: [ReadinessCheckJSON] = []
        do {
            try await deps.store.ping()
            checks.append(.init(name: "store", status: "ok", detail: "SQLite store answers"))
        } catch {
            checks.append(.init(name: "store", status: "fail", detail: "store error: \(error)"))
        }
        checks.append(await policyCheck())
        let dataplane = await deps.dataplane.status()
        if !deps.dataplane.isPresent {
            checks.append(.init(name: "dataplane", status: "absent", detail: dataplane.detail))
        } else {
            checks.append(
                .init(name: "dataplane", status: dataplane.running ? "ok" : "fail", detail: dataplane.detail))
        }
        checks.append(
            deps.dnsProxy.isPresent
                ? .init(name: "dns_proxy", status: "ok", detail: "DNS proxy running")
                : .init(name: "dns_proxy", status: "absent", detail: "no DNS proxy on this node"))
        let ready = !checks.contains { $0.status == "fail" }
        var response = try ReadinessJSON(ready: ready, checks: checks).response(from: request, context: context)
        response.status = ready ? .ok : .serviceUnavailable
        return response
    }

    /// The active policy is compiled and published at its current version.
    func policyCheck() async -> ReadinessCheckJSON {
        let state = await deps.deployer.state
        let active = try? await deps.store.activePolicy()
        guard let active else {
            return .init(
                name: "policy", status: "fail",
                detail: "no active policy: transit traffic is dropped; write one in audit or enforce mode")
        }
        guard state.policyID == active.id, state.version == active.version else {
            return .init(
                name: "policy", status: "fail", detail: "policy \(active.id) v\(active.version) not deployed yet")
        }
        guard state.compiled else {
            return .init(name: "policy", status: "fail", detail: state.error ?? "compilation failed")
        }
        if state.dataplane == "unconfirmed" || state.dataplane == "failed" {
            let reason = state.error.map { ": \($0)" } ?? ""
            return .init(
                name: "policy", status: "fail",
                detail: "generation \(state.generation) \(state.dataplane) by the dataplane\(reason)")
        }
        let what = "policy \(active.id) v\(active.version) (\(active.mode.rawValue))"
        return .init(name: "policy", status: "ok", detail: "\(what) compiled, generation \(state.generation)")
    }
}
