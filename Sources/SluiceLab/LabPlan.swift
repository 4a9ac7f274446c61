// The commands that build and remove the lab's network, as data: `LabController` runs them, the
// unit tests read them without root. Order matters and is explained where it is not obvious.
import Foundation

/// One command of a plan: an argv (the program is looked up in PATH) and whether failure is fine.
public struct LabStep: Sendable, Equatable, CustomStringConvertible {
    /// Program and arguments, never passed through a shell.
    public var argv: [String]
    /// Teardown steps tolerate failure: the thing they remove may already be gone.
    public var mayFail: Bool

    /// A step; `mayFail` defaults to false (a failure stops the plan).
    public init(_ argv: [String], mayFail: Bool = false) {
        self.argv = argv
        self.mayFail = mayFail
    }

    /// The command line as a person would type it.
    public var description: String { argv.joined(separator: " ") }
}

extension LabTopology {
    /// Creates the namespaces, links, addresses and routes. Run after `teardownPlan()` (so a crashed
    /// lab's leftovers cannot make `ip netns add` fail) and before any service starts.
    public func networkPlan() -> [LabStep] {
        var steps: [LabStep] = []
        for namespace in namespaces {
            steps.append(LabStep(["ip", "netns", "add", namespace]))
            steps.append(LabStep(["ip", "-n", namespace, "link", "set", "lo", "up"]))
            // Before any veth exists, so that its addresses (link-local included) are usable at once:
            // a tentative IPv6 address cannot be bound (nsd would fail) and delays the first probes.
            steps.append(
                LabStep(sysctl(namespace, ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])))
        }
        // The gateway never forwards in the kernel: transit packets move only through the dataplane
        // (AF_XDP), which also installs its own nftables forward-path drop. Forwarding off means a
        // stopped or absent dataplane fails closed instead of becoming a bypass around the policy.
        steps.append(
            LabStep(sysctl(gatewayInside.namespace, ["net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"])))

        steps.append(vethStep(gatewayInside, client))
        steps.append(vethStep(gatewayOutside, upstream))

        for host in [client, gatewayInside, gatewayOutside, upstream] {
            steps.append(addressStep(host, host.ipv4))
            steps.append(addressStep(host, host.ipv6))
        }
        steps.append(addressStep(upstreamBlocked, upstreamBlocked.ipv4))
        steps.append(addressStep(upstreamBlocked, upstreamBlocked.ipv6))
        for host in [client, gatewayInside, gatewayOutside, upstream] {
            steps.append(LabStep(["ip", "-n", host.namespace, "link", "set", host.interface, "up"]))
        }

        // The gateway's peers. GRO: frames the dataplane redirects into a veth whose peer has neither
        // an XDP program nor GRO vanish without a counter (shared/notes/afxdp-on-these-machines.md).
        // tx off: with checksum offload the kernel sends TCP/UDP with only the pseudo-header sum in
        // the checksum field (CHECKSUM_PARTIAL); the dataplane copies frames out through AF_XDP, which
        // loses that flag, and the far side would then drop every segment as corrupt.
        for host in [client, upstream] {
            steps.append(
                LabStep([
                    "ip", "netns", "exec", host.namespace, "ethtool", "-K", host.interface, "gro", "on", "tx", "off",
                ]))
        }

        // The client routes everything through the gateway; the upstream, standing in for the
        // internet, routes its replies back through it too (no NAT anywhere).
        for (host, via) in [(client, gatewayInside), (upstream, gatewayOutside)] {
            steps.append(LabStep(["ip", "-n", host.namespace, "route", "add", "default", "via", via.ipv4.address]))
            steps.append(
                LabStep(["ip", "-n", host.namespace, "-6", "route", "add", "default", "via", via.ipv6.address]))
        }
        return steps
    }

    /// Removes the namespaces (which takes their veths with them). Every step may fail: the lab may
    /// be half built or already gone. Processes must be stopped first or a namespace outlives its name.
    public func teardownPlan() -> [LabStep] {
        namespaces.map { LabStep(["ip", "netns", "del", $0], mayFail: true) }
    }

    /// `/etc/netns/<client ns>/resolv.conf`: `ip netns exec` bind-mounts it over /etc/resolv.conf,
    /// so every resolver library in the client namespace asks the gateway's DNS proxy.
    public var clientResolvConfPath: String { "/etc/netns/\(client.namespace)/resolv.conf" }

    /// Contents of `clientResolvConfPath`.
    public var clientResolvConf: String {
        """
        # Written by `sluice lab up`: the client resolves through the gateway's DNS proxy.
        nameserver \(gatewayInside.ipv4.address)
        nameserver \(gatewayInside.ipv6.address)
        options timeout:2 attempts:2

        """
    }

    private func sysctl(_ namespace: String, _ settings: [String]) -> [String] {
        ["ip", "netns", "exec", namespace, "sysctl", "-q", "-w"] + settings
    }

    // Both ends are created directly in their namespaces, with `queues` tx and rx queues each
    // (a veth's default is one; the dataplane runs one worker per queue).
    private func vethStep(_ gatewaySide: LabHost, _ peer: LabHost) -> LabStep {
        let queueArgs = ["numtxqueues", "\(queues)", "numrxqueues", "\(queues)"]
        return LabStep(
            ["ip", "link", "add", gatewaySide.interface, "netns", gatewaySide.namespace] + queueArgs
                + ["type", "veth", "peer", "name", peer.interface, "netns", peer.namespace] + queueArgs)
    }

    private func addressStep(_ host: LabHost, _ address: LabAddress) -> LabStep {
        LabStep(
            ["ip", "-n", host.namespace, "addr", "add", address.cidr, "dev", host.interface]
                + (address.isIPv6 ? ["nodad"] : []))
    }
}
