// The operator's evidence and settings surfaces: stats, performance mode, audit findings, the DNS
// cache and the admin log. Findings (and the wiretap, WiretapRoutes) need performance mode on: when it is
// off they answer 503 with the exact request that turns it on.
import Foundation
import Hummingbird
import SluiceStore

struct OperationsRoutes {
    let deps: APIDependencies

    func register(on group: RouterGroup<SluiceRequestContext>) {
        group.get("stats", use: stats)
        group.get("settings/performance-mode", use: getPerformanceMode)
        group.put("settings/performance-mode", use: putPerformanceMode)
        group.get("audit/findings", use: findings)
        group.get("dns-cache", use: dnsCache)
        group.get("admin-log", use: adminLog)
    }

    @Sendable func stats(_ request: Request, context: SluiceRequestContext) async throws -> StatsJSON {
        let status = await deps.dataplane.status()
        return StatsJSON(
            policy: DeploymentJSON(await deps.deployer.state),
            dataplane: DataplaneStatsJSON(
                kind: status.kind, running: status.running, confirmedGeneration: status.confirmedGeneration,
                detail: status.detail, counters: await deps.dataplane.counters()),
            dns: ComponentCountersJSON(present: deps.dnsProxy.isPresent, counters: await deps.dnsProxy.counters()),
            findings: FindingStatsJSON(dropped: await deps.findings.dropped),
            wiretap: deps.wiretap.statistics)
    }

    @Sendable func getPerformanceMode(_ request: Request, context: SluiceRequestContext) async throws
        -> PerformanceModeJSON
    {
        PerformanceModeJSON(enabled: try await deps.store.performanceMode())
    }

    @Sendable func putPerformanceMode(_ request: Request, context: SluiceRequestContext) async throws
        -> PerformanceModeJSON
    {
        let body = try await request.decode(as: PerformanceModeJSON.self, context: context)
        try await deps.store.setPerformanceMode(body.enabled, actor: context.actor)
        await deps.dataplane.setPerformanceMode(body.enabled)
        return body
    }

    @Sendable func findings(_ request: Request, context: SluiceRequestContext) async throws -> FindingListJSON {
        try await Self.requirePerformanceMode(deps.store)
        let query = request.uri.queryParameters
        var filter = FindingFilter(
            type: query.get("finding_type"), sourceGroup: query.get("source_group"), policyID: query.get("policy_id"))
        var issues: [APIErrorDetail] = []
        if let text = query.get("since") {
            filter.since = Self.parseTime(text)
            if filter.since == nil {
                issues.append(.init(path: "since", message: "expected RFC 3339 time or Unix seconds"))
            }
        }
        if let text = query.get("until") {
            filter.until = Self.parseTime(text)
            if filter.until == nil {
                issues.append(.init(path: "until", message: "expected RFC 3339 time or Unix seconds"))
            }
        }
        if let text = query.get("limit") {
            if let limit = Int(text), (1...10_000).contains(limit) {
                filter.limit = limit
            } else {
                issues.append(.init(path: "limit", message: "expected an integer from 1 to 10000"))
            }
        }
        if !issues.isEmpty { throw APIError(.badRequest, "invalid query", details: issues) }
        try await deps.findings.flush()
        return FindingListJSON(findings: try await deps.store.findings(filter).map(FindingJSON.init))
    }

    @Sendable func dnsCache(_ request: Request, context: SluiceRequestContext) async throws -> DNSCacheJSON {
        DNSCacheJSON(entries: await deps.dnsProxy.cacheEntries())
    }

    @Sendable func adminLog(_ request: Request, context: SluiceRequestContext) async throws -> AdminLogJSON {
        let query = request.uri.queryParameters
        let limit = query.get("limit").flatMap(Int.init) ?? 100
        guard (1...10_000).contains(limit) else {
            throw APIError(
                .badRequest, "invalid query", details: [.init(path: "limit", message: "expected 1 to 10000")])
        }
        let before = query.get("before").flatMap(Int64.init)
        return AdminLogJSON(
            entries: try await deps.store.adminLog(limit: limit, beforeSeq: before).map(AdminLogEntryJSON.init))
    }

    /// The gate of the event surfaces (findings, wiretap): 503 naming the request that lifts it.
    static func requirePerformanceMode(_ store: any ManagementStore) async throws {
        if try await !store.performanceMode() {
            throw APIError(
                .serviceUnavailable,
                "performance mode is disabled; enable it with PUT /api/v1/settings/performance-mode {\"enabled\": true}"
            )
        }
    }

    /// RFC 3339 (with or without fractional seconds) or Unix seconds.
    static func parseTime(_ text: String) -> Date? {
        if let seconds = Double(text) { return Date(timeIntervalSince1970: seconds) }
        if let date = try? Date(text, strategy: .iso8601) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }
}
