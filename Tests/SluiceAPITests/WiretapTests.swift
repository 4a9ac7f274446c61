// The wiretap with a synthetic flow source standing in for the dataplane: filters, the
// once-per-second-per-flow limit, a slow subscriber losing its oldest events (counted) while the
// producer never waits, and the SSE route's format, its performance-mode gate and filter errors.
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SluiceAPI
import SluicePolicy
import Testing

/// A synthetic flow: the dataplane's event collector would build the same from its worker rings.
func syntheticFlow(
    _ id: UInt64, kind: FlowEvent.Kind = .flow, src: String = "10.10.1.20", dst: String = "203.0.113.7",
    dstPort: UInt16 = 443, proto: UInt8 = 6, hostname: String? = "api.example.com"
) -> FlowEvent {
    FlowEvent(
        kind: kind, flowID: id, time: Date(timeIntervalSince1970: 1_800_000_000), src: IPAddress(src)!,
        dst: IPAddress(dst)!, srcPort: 40_000, dstPort: dstPort, proto: proto, verdict: .audit, policyID: "p1",
        sourceGroup: "branch-office", rule: nil, hostname: hostname, bytes: 1200, packets: 4)
}

/// Collects what a subscription delivers until `count` events arrived.
func collect(_ subscription: FlowSubscription, count: Int) async -> [FlowEvent] {
    var events: [FlowEvent] = []
    for await item in subscription.items {
        if case .event(let event) = item { events.append(event) }
        if events.count == count { break }
    }
    return events
}

@Suite struct WiretapHubTests {
    @Test func filtersSelectFlows() throws {
        let query = [
            "src_cidr": "10.10.0.0/16", "dst_cidr": "203.0.113.7", "hostname": "*.EXAMPLE.com.", "proto": "tcp",
            "dst_port": "443",
        ]
        let filter = try FlowFilter.parse { query[$0] }.get()
        #expect(filter.matches(syntheticFlow(1)))
        #expect(!filter.matches(syntheticFlow(1, src: "192.0.2.1")))
        #expect(!filter.matches(syntheticFlow(1, dst: "203.0.113.8")))
        #expect(!filter.matches(syntheticFlow(1, hostname: "example.com")), "*.example.com means subdomains only")
        #expect(!filter.matches(syntheticFlow(1, hostname: nil)))
        #expect(!filter.matches(syntheticFlow(1, proto: 17)))
        #expect(!filter.matches(syntheticFlow(1, dstPort: 80)))
        #expect(FlowFilter().matches(syntheticFlow(1, src: "2001:db8::1", dst: "2001:db8::2")))

        let bad = ["src_cidr": "10.0.0.0/33", "proto": "tcpx", "dst_port": "70000"]
        guard case .failure(let invalid) = FlowFilter.parse({ bad[$0] })
        else { Issue.record("bad filters accepted"); return }
        #expect(invalid.issues.map(\.path) == ["src_cidr", "proto", "dst_port"])
    }

    @Test func atMostOneEventPerFlowPerSecondAndEndsAlwaysPass() async {
        let hub = WiretapHub(minimumInterval: .seconds(1))
        let subscription = hub.subscribe(FlowFilter(), bufferSize: 100)
        for _ in 0..<50 { hub.publish(syntheticFlow(7)) }
        hub.publish(syntheticFlow(8))
        hub.publish(syntheticFlow(7, kind: .flowEnd))
        let events = await collect(subscription, count: 3)
        #expect(events.map(\.flowID) == [7, 8, 7])
        #expect(events.map(\.kind) == [.flow, .flow, .flowEnd])
        #expect(hub.statistics.rateLimited == 49)
        subscription.cancel()
        #expect(hub.statistics.subscribers == 0)
    }

    @Test func aSlowSubscriberLosesItsOldestEventsAndNobodyWaits() async {
        let hub = WiretapHub(minimumInterval: .zero)
        let slow = hub.subscribe(FlowFilter(), bufferSize: 4)
        let onlyUDP = hub.subscribe(FlowFilter(proto: 17), bufferSize: 4)
        let start = ContinuousClock.now
        // Nobody reads while 10 000 events go in: publish must still return at once every time.
        for id in 0..<10_000 as Range<UInt64> { hub.publish(syntheticFlow(id)) }
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(slow.dropped == 10_000 - 4)
        #expect(hub.statistics.dropped == 10_000 - 4)
        let kept = await collect(slow, count: 4)
        #expect(kept.map(\.flowID) == [9_996, 9_997, 9_998, 9_999], "the newest events are kept")
        #expect(onlyUDP.dropped == 0)
        hub.finishAll()
        var ended = true
        for await item in onlyUDP.items { if case .event = item { ended = false } }
        #expect(ended)
    }

    @Test func publishingWithoutSubscribersCountsNothing() {
        let hub = WiretapHub()
        for id in 0..<1000 as Range<UInt64> { hub.publish(syntheticFlow(id)) }
        #expect(hub.statistics == WiretapStatistics(subscribers: 0, published: 0, rateLimited: 0, dropped: 0))
    }
}

@Suite struct WiretapRouteTests {
    /// The fixture with a hub the test publishes into.
    func fixture() async throws -> (APIFixture, WiretapHub) {
        var fixture = try await APIFixture()
        let hub = WiretapHub()
        fixture.deps.wiretap = hub
        return (fixture, hub)
    }

    @Test func streamsFlowsAsServerSentEvents() async throws {
        let (fixture, hub) = try await fixture()
        try await fixture.application().test(.live) { client in
            let reading = Task {
                try await client.execute(
                    uri: "/api/v1/wiretap/stream?dst_port=443&proto=tcp", method: .get,
                    headers: headers(token: fixture.readonlyToken))
            }
            while hub.statistics.subscribers == 0 { try await Task.sleep(for: .milliseconds(10)) }
            hub.publish(syntheticFlow(1))
            hub.publish(syntheticFlow(1))  // within the second: held back
            hub.publish(syntheticFlow(2, dstPort: 53, proto: 17))  // filtered out
            hub.publish(syntheticFlow(1, kind: .flowEnd))
            // Give the writer a moment to drain, then end the stream as a shutdown would.
            while hub.statistics.published < 4 { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(200))
            hub.finishAll()
            let response = try await reading.value
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            let text = String(buffer: response.body)
            let blocks = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(blocks.first == ": sluice wiretap")
            let events = blocks.dropFirst().map { $0.components(separatedBy: "\n") }
            #expect(events.map { $0.first } == ["event: flow", "event: flow_end"])
            let data = try #require(events.first?.last?.dropFirst("data: ".count))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any])
            #expect(object["src"] as? String == "10.10.1.20" && object["dst_port"] as? Int == 443)
            #expect(object["proto"] as? String == "tcp" && object["verdict"] as? String == "audit")
            #expect(object["hostname"] as? String == "api.example.com" && object["flow_id"] as? String == "1")
            #expect(object["source_group"] as? String == "branch-office" && object["rule"] is NSNull)
        }
    }

    @Test func needsPerformanceModeAndValidFilters() async throws {
        let (fixture, _) = try await fixture()
        try await fixture.application().test(.router) { client in
            let auth = headers(token: fixture.adminToken)
            let bad = try await client.execute(
                uri: "/api/v1/wiretap/stream?src_cidr=nope&src_port=x", method: .get, headers: auth)
            #expect(bad.status == .badRequest)
            let details = try #require(try json(bad)["details"] as? [[String: String]])
            #expect(details.map { $0["path"] } == ["src_cidr", "src_port"])

            _ = try await client.execute(
                uri: "/api/v1/settings/performance-mode", method: .put, headers: auth,
                body: body(#"{"enabled": false}"#))
            let gated = try await client.execute(uri: "/api/v1/wiretap/stream", method: .get, headers: auth)
            #expect(gated.status == .serviceUnavailable)
            #expect((try json(gated)["error"] as? String)?.contains(#"{"enabled": true}"#) == true)
            let anonymous = try await client.execute(uri: "/api/v1/wiretap/stream", method: .get)
            #expect(anonymous.status == .unauthorized)
        }
    }
}
