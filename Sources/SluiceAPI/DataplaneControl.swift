// What the API needs from the dataplane and the DNS proxy, as protocols, so a management-only
// node (`--dataplane none`) and the tests run the same API with nothing behind it. The `sluice`
// executable adapts the real AF_XDP dataplane and DNS proxy to these.
import Foundation
import SluicePolicy
import SluiceStore

/// A compiled policy ready to hand to the dataplane, with the generation it will run under.
public struct PolicyDeployment: Sendable {
    /// The stored policy id.
    public var policyID: String
    /// The stored version that was compiled.
    public var version: Int
    /// Its mode.
    public var mode: PolicyMode
    /// Monotonic generation number; workers report which one they run.
    public var generation: UInt64
    /// The compiled tables, immutable once built.
    public var compiled: CompiledPolicy
}

/// The dataplane's state for `/ready` and `/api/v1/stats`.
public struct DataplaneStatus: Sendable, Equatable {
    /// `none` (management-only), `xdp`, ...
    public var kind: String
    /// Whether it forwards traffic now.
    public var running: Bool
    /// The generation every worker has confirmed, if any.
    public var confirmedGeneration: UInt64?
    /// A human-readable note (why it is not running).
    public var detail: String

    public init(kind: String, running: Bool, confirmedGeneration: UInt64?, detail: String) {
        self.kind = kind
        self.running = running
        self.confirmedGeneration = confirmedGeneration
        self.detail = detail
    }
}

/// The control surface of a dataplane. Implementations are called from any task.
public protocol DataplaneControl: Sendable {
    /// Whether a dataplane exists at all (false: a management-only node).
    var isPresent: Bool { get }
    /// Publishes a compiled policy (nil: no active policy, the dataplane fails closed) and returns
    /// once every worker runs it. The API bounds the wait and reports a timeout as unconfirmed.
    func publish(_ deployment: PolicyDeployment?) async throws
    /// Current state.
    func status() async -> DataplaneStatus
    /// Named counters (packets, drops, flows, DNS queries...) for `/api/v1/stats`.
    func counters() async -> [String: UInt64]
    /// Turns the event surfaces (audit findings, wiretap) on or off.
    func setPerformanceMode(_ enabled: Bool) async
}

/// The dataplane of a management-only node: nothing to publish to, always "absent".
public struct NoDataplane: DataplaneControl {
    public init() {}
    public var isPresent: Bool { false }
    public func publish(_ deployment: PolicyDeployment?) async throws {}
    public func status() async -> DataplaneStatus {
        DataplaneStatus(
            kind: "none", running: false, confirmedGeneration: nil,
            detail: "management-only node (--dataplane none): policies are validated and compiled, not enforced")
    }
    public func counters() async -> [String: UInt64] { [:] }
    public func setPerformanceMode(_ enabled: Bool) async {}
}

/// One hostname's learned addresses, for `/api/v1/dns-cache`.
public struct DNSCacheEntry: Codable, Sendable, Equatable {
    /// The queried name, lowercased, without the trailing dot.
    public var hostname: String
    /// Learned A/AAAA addresses with their expiry.
    public var addresses: [Address]
    /// The policy rule whose allow taught them (`group/rule`).
    public var rule: String?

    /// One learned address.
    public struct Address: Codable, Sendable, Equatable {
        public var address: String
        public var expiresAt: Date

        enum CodingKeys: String, CodingKey {
            case address
            case expiresAt = "expires_at"
        }

        public init(address: String, expiresAt: Date) {
            self.address = address
            self.expiresAt = expiresAt
        }
    }

    public init(hostname: String, addresses: [Address], rule: String?) {
        self.hostname = hostname
        self.addresses = addresses
        self.rule = rule
    }
}

/// The DNS proxy as the API sees it.
public protocol DNSProxyControl: Sendable {
    /// Whether a DNS proxy runs on this node.
    var isPresent: Bool { get }
    /// Learned hostname → address bindings.
    func cacheEntries() async -> [DNSCacheEntry]
    /// Named counters for `/api/v1/stats`.
    func counters() async -> [String: UInt64]
}

/// No DNS proxy (until the DNS issue lands, and on management-only nodes): an empty cache.
public struct NoDNSProxy: DNSProxyControl {
    public init() {}
    public var isPresent: Bool { false }
    public func cacheEntries() async -> [DNSCacheEntry] { [] }
    public func counters() async -> [String: UInt64] { [:] }
}
