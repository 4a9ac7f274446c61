// The lab's shape as a value: three network namespaces, two veth pairs, their addresses, the
// upstream's services and the gateway's API, all derived from one prefix so that a second lab
// (the root tests use their own prefix) never collides with a developer's running one.
//
//   client ns                 gateway ns                         upstream ns
//   eth0 10.77.1.2  ◄─veth─►  inside0 10.77.1.1 │ outside0 10.77.2.1  ◄─veth─►  eth0 10.77.2.2, .3
//        fd77:1::2                fd77:1::1   │     fd77:2::1                 fd77:2::2, ::3
//
// Every link is created directly inside its namespace (`ip link add ... netns NS`), so the host's
// own namespace never holds a lab interface, not even for an instant.
import Foundation

/// An interface address with its prefix length, as `ip addr add` takes it.
public struct LabAddress: Sendable, Equatable {
    /// The address alone, e.g. `10.77.1.2` or `fd77:1::2`.
    public var address: String
    /// The on-link prefix length.
    public var prefixLength: Int

    /// `address/prefixLength`.
    public var cidr: String { "\(address)/\(prefixLength)" }

    /// Whether this is an IPv6 address.
    public var isIPv6: Bool { address.contains(":") }

    /// The network in CIDR form, e.g. `10.77.1.0/24` (only the lab's /24 and /64 shapes are needed).
    public var network: String {
        if isIPv6 {
            let head = address.components(separatedBy: "::").first ?? address
            return "\(head)::/\(prefixLength)"
        }
        var octets = address.split(separator: ".").map(String.init)
        octets[octets.count - 1] = "0"
        return "\(octets.joined(separator: "."))/\(prefixLength)"
    }

    /// Makes an address; `address` must be a literal IPv4 or IPv6 address.
    public init(_ address: String, _ prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }
}

/// One namespace of the lab and its single lab-facing interface addresses.
public struct LabHost: Sendable, Equatable {
    /// The network namespace name (`ip netns`).
    public var namespace: String
    /// The interface inside that namespace.
    public var interface: String
    /// IPv4 address of `interface`.
    public var ipv4: LabAddress
    /// IPv6 address of `interface` (ULA).
    public var ipv6: LabAddress

    /// A host of the lab.
    public init(namespace: String, interface: String, ipv4: LabAddress, ipv6: LabAddress) {
        self.namespace = namespace
        self.interface = interface
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }
}

/// The whole lab: names, addresses, ports and the DNS zone. Pure data; `LabPlan` turns it into commands.
public struct LabTopology: Sendable, Equatable {
    /// Prefix of every namespace name and of the state directory (`sluice` by default).
    public var prefix: String

    /// The workload side: routes via the gateway and resolves through it.
    public var client: LabHost
    /// The gateway's inside interface (towards the client) in the gateway namespace.
    public var gatewayInside: LabHost
    /// The gateway's outside interface (towards the upstream), same namespace as `gatewayInside`.
    public var gatewayOutside: LabHost
    /// The "internet": HTTP, TLS and DNS servers.
    public var upstream: LabHost
    /// A second upstream address, used only by `blocked.<zone>`, so a deny test never shares an
    /// address with an allowed name (a learned allow for one must not open the other).
    /// Same namespace and interface as `upstream`.
    public var upstreamBlocked: LabHost

    /// Queues of every veth (tx and rx): the dataplane runs one worker per queue.
    public var queues = 2
    /// Plain HTTP server port in the upstream namespace.
    public var httpPort = 80
    /// TLS server port in the upstream namespace.
    public var tlsPort = 443
    /// Authoritative DNS (nsd) port in the upstream namespace.
    public var dnsPort = 53
    /// Management API port on the gateway's inside address (plain HTTP: lab only).
    public var apiPort = 8080
    /// The zone nsd serves.
    public var zone = "lab.sluice.test"

    /// Names in the zone (fully qualified, no trailing dot).
    public var apiName: String { "api.\(zone)" }
    /// The name the example policy denies (its own certificate and address).
    public var blockedName: String { "blocked.\(zone)" }
    /// `www` is a CNAME to `api`; `alias` is a CNAME to `www` (a chain of two).
    public var wwwName: String { "www.\(zone)" }
    /// The head of the CNAME chain `alias → www → api`.
    public var aliasName: String { "alias.\(zone)" }
    /// An A/AAAA record for the upstream with a 5 s TTL, for expiry tests.
    public var shortName: String { "short.\(zone)" }
    /// TTL of `shortName`.
    public var shortTTL = 5

    /// Directory of pids, logs, configuration, certificates and the gateway's data.
    public var stateDirectory: String { "/run/\(prefix)-lab" }

    /// The three namespaces, in creation order.
    public var namespaces: [String] { [client.namespace, gatewayInside.namespace, upstream.namespace] }

    /// The API's base URL as seen from the client and the gateway namespaces.
    public var apiURL: String { "http://\(gatewayInside.ipv4.address):\(apiPort)" }

    /// The lab with the given prefix; `prefix` must satisfy `LabTopology.validatePrefix`.
    public init(prefix: String = "sluice") {
        self.prefix = prefix
        let gateway = "\(prefix)-gw"
        client = LabHost(
            namespace: "\(prefix)-client", interface: "eth0",
            ipv4: LabAddress("10.77.1.2", 24), ipv6: LabAddress("fd77:1::2", 64))
        gatewayInside = LabHost(
            namespace: gateway, interface: "inside0",
            ipv4: LabAddress("10.77.1.1", 24), ipv6: LabAddress("fd77:1::1", 64))
        gatewayOutside = LabHost(
            namespace: gateway, interface: "outside0",
            ipv4: LabAddress("10.77.2.1", 24), ipv6: LabAddress("fd77:2::1", 64))
        upstream = LabHost(
            namespace: "\(prefix)-up", interface: "eth0",
            ipv4: LabAddress("10.77.2.2", 24), ipv6: LabAddress("fd77:2::2", 64))
        upstreamBlocked = LabHost(
            namespace: upstream.namespace, interface: upstream.interface,
            ipv4: LabAddress("10.77.2.3", 24), ipv6: LabAddress("fd77:2::3", 64))
    }

    /// Prefixes become namespace names and a directory under /run: lower-case letters and digits,
    /// starting with a letter, at most 12 characters. Returns the problem, or nil when fine.
    public static func validatePrefix(_ prefix: String) -> String? {
        let allowed = prefix.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) }
        guard let first = prefix.unicodeScalars.first, ("a"..."z").contains(first), allowed, prefix.count <= 12
        else {
            return "lab prefix '\(prefix)' must be 1-12 lower-case letters or digits, starting with a letter"
        }
        return nil
    }
}
