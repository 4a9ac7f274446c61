// What `sluice lab up --json` prints and leaves in the state directory (`lab.json`): everything a
// script needs to drive the lab. The keys named in issue 3 are a contract; the rest are additions.
import Foundation

/// The running lab, as JSON.
public struct LabInfo: Codable, Sendable, Equatable {
    /// The client namespace and its addresses.
    public struct Client: Codable, Sendable, Equatable {
        /// Namespace name.
        public var netns: String
        /// IPv4 address (no prefix length).
        public var ipv4: String
        /// IPv6 address (no prefix length).
        public var ipv6: String
        /// Its resolver: the gateway's inside addresses.
        public var resolvers: [String]
    }

    /// The upstream namespace, its services and the lab CA.
    public struct Upstream: Codable, Sendable, Equatable {
        /// Namespace name.
        public var netns: String
        /// IPv4 address of the allowed names.
        public var ipv4: String
        /// IPv6 address of the allowed names.
        public var ipv6: String
        /// Addresses of `blocked.<zone>` (denied by the example policy).
        public var blockedIPv4: String
        /// IPv6 of `blocked.<zone>`.
        public var blockedIPv6: String
        /// HTTP server port.
        public var httpPort: Int
        /// TLS server port.
        public var tlsPort: Int
        /// DNS server port (nsd, on `ipv4` and `ipv6`).
        public var dnsPort: Int
        /// The zone nsd serves.
        public var dnsZone: String
        /// Names in the zone by role: api, www, alias, short, blocked.
        public var names: [String: String]
        /// The lab CA certificate (PEM) that signed the TLS server's certificates.
        public var caCertificate: String

        enum CodingKeys: String, CodingKey {
            case netns, ipv4, ipv6, names
            case blockedIPv4 = "blocked_ipv4"
            case blockedIPv6 = "blocked_ipv6"
            case httpPort = "http_port"
            case tlsPort = "tls_port"
            case dnsPort = "dns_port"
            case dnsZone = "dns_zone"
            case caCertificate = "ca_certificate"
        }
    }

    /// The gateway namespace, its interfaces and how `sluice run` was started.
    public struct Gateway: Codable, Sendable, Equatable {
        /// Namespace name.
        public var netns: String
        /// Inside interface name (towards the client).
        public var inside: String
        /// Outside interface name (towards the upstream).
        public var outside: String
        /// Addresses of the inside interface (the client's router and resolver).
        public var insideAddresses: [String]
        /// Addresses of the outside interface.
        public var outsideAddresses: [String]
        /// `xdp`, `none`, or null when `--no-gateway` left the gateway process out.
        public var dataplane: String?
        /// Whether the gateway runs its DNS proxy.
        public var dnsProxy: Bool
        /// Pid of `sluice run`, or null.
        public var pid: Int32?
        /// The gateway's log file, or null.
        public var log: String?
        /// The gateway's data directory, or null.
        public var dataDir: String?

        enum CodingKeys: String, CodingKey {
            case netns, inside, outside, dataplane, pid, log
            case insideAddresses = "inside_addresses"
            case outsideAddresses = "outside_addresses"
            case dnsProxy = "dns_proxy"
            case dataDir = "data_dir"
        }
    }

    /// Base URL of the management API, or null without a gateway.
    public var api: String?
    /// An admin token for the API, or null without a gateway.
    public var token: String?
    /// The client side.
    public var client: Client
    /// The upstream side.
    public var upstream: Upstream
    /// The gateway.
    public var gateway: Gateway
    /// Name of the policy the lab loaded, or null.
    public var policy: String?
    /// The state directory (pids, logs, configuration).
    public var stateDir: String
    /// Problems the operator must know about (no dataplane, no DNS proxy).
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case api, token, client, upstream, gateway, policy, warnings
        case stateDir = "state_dir"
    }

    // Written by hand so that a missing API or token is `null`, not an absent key: scripts index
    // `.api` and `.token` unconditionally.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(api, forKey: .api)
        try container.encode(token, forKey: .token)
        try container.encode(client, forKey: .client)
        try container.encode(upstream, forKey: .upstream)
        try container.encode(gateway, forKey: .gateway)
        try container.encode(policy, forKey: .policy)
        try container.encode(stateDir, forKey: .stateDir)
        try container.encode(warnings, forKey: .warnings)
    }

    /// Pretty, key-sorted JSON with a final newline.
    public func jsonText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }
}

extension LabTopology {
    /// The info of this lab before the gateway starts (no API, token or process yet).
    public func baseInfo(_ paths: LabPaths) -> LabInfo {
        LabInfo(
            api: nil, token: nil,
            client: .init(
                netns: client.namespace, ipv4: client.ipv4.address, ipv6: client.ipv6.address,
                resolvers: [gatewayInside.ipv4.address, gatewayInside.ipv6.address]),
            upstream: .init(
                netns: upstream.namespace, ipv4: upstream.ipv4.address, ipv6: upstream.ipv6.address,
                blockedIPv4: upstreamBlocked.ipv4.address, blockedIPv6: upstreamBlocked.ipv6.address,
                httpPort: httpPort, tlsPort: tlsPort, dnsPort: dnsPort, dnsZone: zone,
                names: [
                    "api": apiName, "www": wwwName, "alias": aliasName, "short": shortName, "blocked": blockedName,
                ],
                caCertificate: paths.caCertificate),
            gateway: .init(
                netns: gatewayInside.namespace, inside: gatewayInside.interface, outside: gatewayOutside.interface,
                insideAddresses: [gatewayInside.ipv4.address, gatewayInside.ipv6.address],
                outsideAddresses: [gatewayOutside.ipv4.address, gatewayOutside.ipv6.address],
                dataplane: nil, dnsProxy: false, pid: nil, log: nil, dataDir: nil),
            policy: nil, stateDir: paths.root, warnings: [])
    }
}
