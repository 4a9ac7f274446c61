// `sluice audit findings`, `sluice dns-cache`, `sluice stats`, `sluice wiretap`: the evidence
// surfaces of the rollout guide (000_03ae8a53bab02b1f.txt, step 4) from the command line, as
// tables by default and as the API's JSON with --json.
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SluicePolicy

/// `sluice audit …`.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Audit evidence of a running gateway.", subcommands: [Findings.self])

    struct Findings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Aggregated denies (enforced) and would-be denies (audit), newest first.",
            discussion: "Needs performance mode on (PUT /api/v1/settings/performance-mode {\"enabled\": true}).")

        @Option(help: "Only this type, e.g. packet_deny, dns_deny, tls_deny.")
        var findingType: String?
        @Option(help: "Only this source group.")
        var sourceGroup: String?
        @Option(name: .customLong("policy-id"), help: "Only this policy id.")
        var policyID: String?
        @Option(help: "Only findings last seen at or after this time (RFC 3339 or Unix seconds).")
        var since: String?
        @Option(help: "Only findings last seen at or before this time (RFC 3339 or Unix seconds).")
        var until: String?
        @Option(help: "At most this many rows (1-10000, server default 100).")
        var limit: Int?

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await APIClient.run(client) { api in
                let reply = try await api.expect(.GET, "/api/v1/audit/findings", query: [
                    ("finding_type", findingType), ("source_group", sourceGroup), ("policy_id", policyID),
                    ("since", since), ("until", until), ("limit", limit.map(String.init)),
                ])
                if client.json { return api.printJSON(reply) }
                let rows = (try reply.document()["findings"]?.elements ?? []).map { finding in
                    let place = [finding["destination"]?.text, finding["port"]?.text].compactMap { $0 }
                    return [
                        finding["last_seen"]?.text ?? "?", finding["enforced"] == .bool(true) ? "denied" : "would deny",
                        finding["finding_type"]?.text ?? "?", finding["source_group"]?.text ?? "-",
                        finding["rule"]?.text ?? "(default)", finding["proto"]?.text ?? "-",
                        place.isEmpty ? "-" : place.joined(separator: ":"), finding["hostname"]?.text ?? "-",
                        finding["count"]?.text ?? "?",
                    ]
                }
                printTable(["LAST SEEN", "OUTCOME", "TYPE", "GROUP", "RULE", "PROTO", "DESTINATION", "HOSTNAME",
                            "COUNT"], rows)
            }
        }
    }
}

struct DNSCacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns-cache", abstract: "Hostnames and the addresses the gateway learned for them.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await APIClient.run(client) { api in
            let reply = try await api.expect(.GET, "/api/v1/dns-cache")
            if client.json { return api.printJSON(reply) }
            var rows: [[String]] = []
            for entry in try reply.document()["entries"]?.elements ?? [] {
                for address in entry["addresses"]?.elements ?? [] {
                    rows.append([
                        entry["hostname"]?.text ?? "?", address["address"]?.text ?? "?",
                        address["expires_at"]?.text ?? "?", entry["rule"]?.text ?? "-",
                    ])
                }
            }
            printTable(["HOSTNAME", "ADDRESS", "EXPIRES", "RULE"], rows)
        }
    }
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "The active policy, dataplane and DNS counters, findings and wiretap.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await APIClient.run(client) { api in
            let reply = try await api.expect(.GET, "/api/v1/stats")
            if client.json { return api.printJSON(reply) }
            let stats = try reply.document()
            var rows: [[String]] = []
            // Sections in the order an operator reads them after a write: what runs, then traffic.
            for section in ["policy", "dataplane", "dns", "findings", "wiretap"] {
                guard case .object(let members)? = stats[section] else { continue }
                for (key, value) in members.sorted(by: { $0.key < $1.key }) {
                    if case .object(let counters) = value {
                        for (counter, number) in counters.sorted(by: { $0.key < $1.key }) {
                            rows.append(["\(section).\(key).\(counter)", number.text ?? "-"])
                        }
                    } else {
                        rows.append(["\(section).\(key)", value.text ?? "-"])
                    }
                }
            }
            printTable(["STAT", "VALUE"], rows)
        }
    }
}

struct WiretapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wiretap",
        abstract: "Follow live flows (GET /api/v1/wiretap/stream) until interrupted.",
        discussion: """
        One line per event: `flow` at most once per flow per second, `end` when the flow ends. With --json,
        one JSON object per line: the event's data with "event" added. Needs performance mode on.
        """
    )

    @Option(name: .customLong("src-cidr"), help: "Source inside this CIDR (or address).")
    var srcCIDR: String?
    @Option(name: .customLong("dst-cidr"), help: "Destination inside this CIDR (or address).")
    var dstCIDR: String?
    @Option(help: "DNS name or SNI, exact or *.example.com.")
    var hostname: String?
    @Option(help: "tcp, udp, icmp, icmpv6 or 0-255.")
    var proto: String?
    @Option(help: "Source port.")
    var srcPort: UInt16?
    @Option(help: "Destination port.")
    var dstPort: UInt16?
    @Option(help: "Stop after this many flow events (default: follow until interrupted).")
    var count: Int?

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await APIClient.run(client) { api in
            let response = try await api.open(.GET, "/api/v1/wiretap/stream", query: [
                ("src_cidr", srcCIDR), ("dst_cidr", dstCIDR), ("hostname", hostname), ("proto", proto),
                ("src_port", srcPort.map(String.init)), ("dst_port", dstPort.map(String.init)),
            ], timeout: .hours(24 * 365))
            guard response.status.code == 200 else {
                let body = try await response.body.collect(upTo: 1024 * 1024)
                throw APIClient.serverError(APIReply(
                    status: Int(response.status.code), headers: [], body: Array(body.readableBytesView)))
            }
            if !client.json {
                print("TIME                  EVENT  VERDICT  PROTO   SOURCE  →  DESTINATION  HOST  GROUP/RULE  SIZE")
            }
            var parser = ServerSentEventParser()
            var seen = 0
            for try await chunk in response.body {
                for event in parser.feed(Array(chunk.readableBytesView)) {
                    print(render(event))
                    fflush(nil)  // every open stream: a pipe to `grep` sees each event at once
                    if event.name == "flow" || event.name == "flow_end" { seen += 1 }
                    if let count, seen >= count { return }
                }
            }
        }
    }

    func render(_ event: ServerSentEventParser.Event) -> String {
        let data = (try? JSONValue.parse(Array(event.data.utf8))) ?? .string(event.data)
        if client.json {
            guard case .object(let members) = data else { return data.jsonText }
            return JSONValue.object([(key: "event", value: .string(event.name))] + members).jsonText
        }
        if event.name == "dropped" {
            return "(this client was too slow: \(data["dropped"]?.text ?? "?") events dropped so far)"
        }
        let endpoint = { (address: String, port: String) in port == "0" ? address : "\(address):\(port)" }
        let src = endpoint(data["src"]?.text ?? "?", data["src_port"]?.text ?? "0")
        let dst = endpoint(data["dst"]?.text ?? "?", data["dst_port"]?.text ?? "0")
        let decided = [data["source_group"]?.text, data["rule"]?.text].compactMap { $0 }.joined(separator: "/")
        return [
            data["time"]?.text ?? "?", event.name == "flow_end" ? "end  " : "flow ",
            (data["verdict"]?.text ?? "?").padding(toLength: 7, withPad: " ", startingAt: 0),
            (data["proto"]?.text ?? "?").padding(toLength: 6, withPad: " ", startingAt: 0), src, "→", dst,
            data["hostname"]?.text ?? "-", decided.isEmpty ? "-" : decided,
            "\(data["bytes"]?.text ?? "0")B/\(data["packets"]?.text ?? "0")p",
        ].joined(separator: "  ")
    }
}

/// Splits a text/event-stream into events (the subset the wiretap uses: `event:` and `data:`
/// lines, comments ignored, a blank line ends an event).
struct ServerSentEventParser {
    /// One event.
    struct Event {
        var name: String
        var data: String
    }

    private var pending: [UInt8] = []
    private var name = "message"
    private var data: [String] = []

    /// Adds bytes and returns the events they complete.
    mutating func feed(_ bytes: [UInt8]) -> [Event] {
        pending += bytes
        var events: [Event] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            var line = String(decoding: pending[..<newline], as: UTF8.self)
            pending.removeSubrange(...newline)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty {
                if !data.isEmpty { events.append(Event(name: name, data: data.joined(separator: "\n"))) }
                name = "message"
                data = []
            } else if line.hasPrefix("event:") {
                name = line.dropFirst(6).trimmingCharacters(in: .whitespaces)
            } else if line.hasPrefix("data:") {
                var value = line.dropFirst(5)
                if value.hasPrefix(" ") { value = value.dropFirst() }
                data.append(String(value))
            }
        }
        return events
    }
}
