// One live flow as the wiretap shows it, and the filters of `GET /api/v1/wiretap/stream`. The
// dataplane's event collector builds FlowEvents from its worker rings and publishes them to a
// FlowEventSink (WiretapHub); nothing here runs on a packet worker.
import Foundation
import SluicePolicy

/// What the policy did with a flow, as the wiretap reports it.
public enum FlowVerdict: String, Sendable, Codable, CaseIterable {
    /// Allowed by the policy.
    case allow
    /// Denied (dropped).
    case deny
    /// The policy logic denies it but audit mode let it through (a finding was recorded).
    case audit
}

/// A flow seen by the dataplane: `event: flow` while it lives, `event: flow_end` when it ends.
public struct FlowEvent: Sendable, Equatable, Encodable {
    /// Which SSE event this is.
    public enum Kind: String, Sendable, Codable {
        /// A new flow, or an update of a live one (at most one per flow per second reaches a client).
        case flow
        /// The flow ended (FIN/RST seen, or it expired); always delivered.
        case flowEnd = "flow_end"
    }

    /// Which SSE event this is.
    public var kind: Kind
    /// The dataplane's identifier of the flow (e.g. its flow-table key hash), stable for the flow's life:
    /// the wiretap's once-per-second limit is kept per flow id.
    public var flowID: UInt64
    /// When the dataplane observed this state.
    public var time: Date
    /// Source address (the inside client).
    public var src: IPAddress
    /// Destination address.
    public var dst: IPAddress
    /// Source port (0 for protocols without ports).
    public var srcPort: UInt16
    /// Destination port (0 for protocols without ports).
    public var dstPort: UInt16
    /// IP protocol number.
    public var proto: UInt8
    /// What the policy did.
    public var verdict: FlowVerdict
    /// The policy that judged the flow, when one was active.
    public var policyID: String?
    /// The source group that decided, if any.
    public var sourceGroup: String?
    /// The rule that decided, nil when a default decided.
    public var rule: String?
    /// DNS name (from a learned address) or TLS SNI, when known.
    public var hostname: String?
    /// Bytes so far (both directions).
    public var bytes: UInt64
    /// Packets so far (both directions).
    public var packets: UInt64

    public init(
        kind: Kind, flowID: UInt64, time: Date = Date(), src: IPAddress, dst: IPAddress, srcPort: UInt16 = 0,
        dstPort: UInt16 = 0, proto: UInt8, verdict: FlowVerdict, policyID: String? = nil, sourceGroup: String? = nil,
        rule: String? = nil, hostname: String? = nil, bytes: UInt64 = 0, packets: UInt64 = 0
    ) {
        self.kind = kind
        self.flowID = flowID
        self.time = time
        self.src = src
        self.dst = dst
        self.srcPort = srcPort
        self.dstPort = dstPort
        self.proto = proto
        self.verdict = verdict
        self.policyID = policyID
        self.sourceGroup = sourceGroup
        self.rule = rule
        self.hostname = hostname
        self.bytes = bytes
        self.packets = packets
    }

    enum CodingKeys: String, CodingKey {
        case src, dst, proto, verdict, rule, hostname, bytes, packets, time
        case flowID = "flow_id"
        case srcPort = "src_port"
        case dstPort = "dst_port"
        case policyID = "policy_id"
        case sourceGroup = "source_group"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        // A string, so JavaScript clients (the usual SSE consumers) never round a 64-bit id.
        try container.encode(String(flowID), forKey: .flowID)
        try container.encode(time, forKey: .time)
        try container.encode(src.description, forKey: .src)
        try container.encode(dst.description, forKey: .dst)
        try container.encode(srcPort, forKey: .srcPort)
        try container.encode(dstPort, forKey: .dstPort)
        try container.encode(Self.protoName(proto), forKey: .proto)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(policyID, forKey: .policyID)
        try container.encode(sourceGroup, forKey: .sourceGroup)
        try container.encode(rule, forKey: .rule)
        try container.encode(hostname, forKey: .hostname)
        try container.encode(bytes, forKey: .bytes)
        try container.encode(packets, forKey: .packets)
    }

    /// The protocol's name as policies spell it (`tcp`, `udp`, `icmp`...), or its number as text.
    public static func protoName(_ proto: UInt8) -> String {
        ProtoValue.names.first { $0.number == proto }?.name ?? String(proto)
    }
}

/// Query parameters that are not valid filters, each with its problem.
public struct InvalidFlowFilter: Error, Equatable {
    /// One entry per bad parameter (`path` is the parameter's name).
    public var issues: [APIErrorDetail]
}

/// The filters of the wiretap stream; every one that is set must match (nil: any).
public struct FlowFilter: Sendable, Equatable {
    /// Source inside this prefix.
    public var srcCIDR: IPPrefix?
    /// Destination inside this prefix.
    public var dstCIDR: IPPrefix?
    /// Hostname, case-insensitive: exact, or `*.example.com` for any subdomain of example.com
    /// (the same wildcard sugar as `dns_hostname`). A flow without a known hostname never matches.
    public var hostname: String?
    /// IP protocol number.
    public var proto: UInt8?
    /// Source port.
    public var srcPort: UInt16?
    /// Destination port.
    public var dstPort: UInt16?

    public init(
        srcCIDR: IPPrefix? = nil, dstCIDR: IPPrefix? = nil, hostname: String? = nil, proto: UInt8? = nil,
        srcPort: UInt16? = nil, dstPort: UInt16? = nil
    ) {
        self.srcCIDR = srcCIDR
        self.dstCIDR = dstCIDR
        self.hostname = hostname.map(Self.normalize)
        self.proto = proto
        self.srcPort = srcPort
        self.dstPort = dstPort
    }

    /// The filter of a query string (`src_cidr`, `dst_cidr`, `hostname`, `proto`, `src_port`,
    /// `dst_port`), or every problem with the parameter it concerns.
    public static func parse(_ query: (String) -> String?) -> Result<FlowFilter, InvalidFlowFilter> {
        var filter = FlowFilter()
        var issues: [APIErrorDetail] = []
        for (name, keyPath) in [("src_cidr", \FlowFilter.srcCIDR), ("dst_cidr", \FlowFilter.dstCIDR)] {
            guard let text = query(name) else { continue }
            // A bare address is accepted as a host prefix: `src_cidr=10.0.0.5` is what people type.
            if let address = IPAddress(text) {
                filter[keyPath: keyPath] = IPPrefix(host: address)
            } else if case .success(let prefix) = IPPrefix.parse(text) {
                filter[keyPath: keyPath] = prefix
            } else {
                issues.append(.init(path: name, message: "expected a CIDR such as 10.0.0.0/8 or an address"))
            }
        }
        if let text = query("hostname") {
            if text.isEmpty {
                issues.append(.init(path: "hostname", message: "must not be empty"))
            } else {
                filter.hostname = normalize(text)
            }
        }
        if let text = query("proto") {
            if case .number(let number)? = ProtoValue(name: text) {
                filter.proto = number
            } else {
                issues.append(.init(path: "proto", message: "expected tcp, udp, icmp, icmpv6 or a number 0-255"))
            }
        }
        for (name, keyPath) in [("src_port", \FlowFilter.srcPort), ("dst_port", \FlowFilter.dstPort)] {
            guard let text = query(name) else { continue }
            if let port = UInt16(text) {
                filter[keyPath: keyPath] = port
            } else {
                issues.append(.init(path: name, message: "expected a port from 0 to 65535"))
            }
        }
        return issues.isEmpty ? .success(filter) : .failure(InvalidFlowFilter(issues: issues))
    }

    /// Whether the event passes every filter that is set.
    public func matches(_ event: FlowEvent) -> Bool {
        if let srcCIDR, !srcCIDR.contains(event.src) { return false }
        if let dstCIDR, !dstCIDR.contains(event.dst) { return false }
        if let proto, event.proto != proto { return false }
        if let srcPort, event.srcPort != srcPort { return false }
        if let dstPort, event.dstPort != dstPort { return false }
        if let hostname {
            guard let seen = event.hostname.map(Self.normalize) else { return false }
            if hostname.hasPrefix("*.") {
                return seen.hasSuffix(hostname.dropFirst(1))
            }
            return seen == hostname
        }
        return true
    }

    static func normalize(_ name: String) -> String {
        var name = name.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name
    }
}
