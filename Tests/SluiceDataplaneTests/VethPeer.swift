// A throwaway network namespace joined to this one by a veth pair, for the root-only tests: the host
// end here, the peer end in the namespace, both up with an IPv4 /24 (.1 here, .2 there) and an IPv6
// /64 (::1 here, ::2 there, no duplicate address detection, so usable at once).
import SluiceProcess

struct VethPeer {
    let namespace: String
    let host: String
    let peer: String
    /// The first three octets of the IPv4 /24, e.g. "10.213.7".
    let subnet: String
    /// The IPv6 /64 without its host part, e.g. "fd00:213:".
    let prefix6: String

    var hostV4: String { "\(subnet).1" }
    var peerV4: String { "\(subnet).2" }
    var hostV6: String { "\(prefix6):1" }
    var peerV6: String { "\(prefix6):2" }

    /// Creates the namespace and the pair. Call `remove` in a `defer` registered before this, so a
    /// half-made setup is removed too.
    func create() throws {
        try Subprocess.check(["ip", "netns", "add", namespace])
        try Subprocess.check(["ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", namespace])
        try Subprocess.check(["ip", "addr", "add", "\(hostV4)/24", "dev", host])
        try Subprocess.check(["ip", "addr", "add", "\(hostV6)/64", "dev", host, "nodad"])
        try Subprocess.check(["ip", "link", "set", host, "up"])
        try Subprocess.check(["ip", "-n", namespace, "link", "set", "lo", "up"])
        try Subprocess.check(["ip", "-n", namespace, "addr", "add", "\(peerV4)/24", "dev", peer])
        try Subprocess.check(["ip", "-n", namespace, "addr", "add", "\(peerV6)/64", "dev", peer, "nodad"])
        try Subprocess.check(["ip", "-n", namespace, "link", "set", peer, "up"])
    }

    /// Deletes the namespace and the host end (which takes the peer with it). Safe to call twice.
    func remove() {
        _ = try? Subprocess.check(["ip", "netns", "del", namespace])
        _ = try? Subprocess.check(["ip", "link", "del", host])
    }
}
