// How the lab starts `sluice run` in the gateway namespace. The dataplane (`--inside/--outside`)
// and the DNS proxy (`--dns-listen/--dns-upstream`) arrive in separate branches; rather than
// guessing, the lab reads `sluice run --help` and uses what the binary it runs actually offers,
// and says loudly when the gateway runs without a dataplane (then nothing forwards at all).
import Foundation

/// The decided `sluice run` command line and what it left out.
public struct GatewayLaunch: Sendable, Equatable {
    /// The argv, starting with the sluice executable; run inside the gateway namespace.
    public var argv: [String]
    /// `xdp` when the binary has the AF_XDP dataplane options, else `none`.
    public var dataplane: String
    /// Whether the DNS proxy was configured (the client's resolver is the gateway's inside address).
    public var dnsProxy: Bool
    /// Loud lines for the operator: what is missing and what that means in this lab.
    public var warnings: [String]

    /// Decides the command from the help text of `sluice run` (`runHelp`).
    public init(sluice: String, runHelp: String, topology: LabTopology, paths: LabPaths) {
        let inside = topology.gatewayInside
        let outside = topology.gatewayOutside
        argv = [
            sluice, "run", "--data-dir", paths.gatewayData,
            "--api-listen", "\(inside.ipv4.address):\(topology.apiPort)",
            // Plain HTTP on a non-loopback address: a lab inside private namespaces only.
            "--api-plaintext", "--api-plaintext-any-address",
        ]
        warnings = []
        if runHelp.contains("--inside") && runHelp.contains("--outside") {
            dataplane = "xdp"
            argv += ["--dataplane", "xdp", "--inside", inside.interface, "--outside", outside.interface]
        } else {
            dataplane = "none"
            argv += ["--dataplane", "none"]
            warnings.append(
                "this sluice has no AF_XDP dataplane (`sluice run` lacks --inside/--outside): the gateway runs "
                    + "--dataplane none, so NOTHING is forwarded between client and upstream (the kernel does not "
                    + "forward either, by design); the API and policy compilation work")
        }
        if runHelp.contains("--dns-listen") && runHelp.contains("--dns-upstream") {
            dnsProxy = true
            argv += [
                // Both families: `--dns-redirect` sends a query to the inside address of its own family.
                "--dns-listen", "\(inside.ipv4.address):53", "--dns-listen", "[\(inside.ipv6.address)]:53",
                "--dns-upstream", "\(topology.upstream.ipv4.address):\(topology.dnsPort)",
            ]
        } else {
            dnsProxy = false
            warnings.append(
                "this sluice has no DNS proxy (`sluice run` lacks --dns-listen): the client's resolver "
                    + "(\(inside.ipv4.address)) does not answer; query the upstream's nsd directly from the gateway "
                    + "namespace")
        }
    }
}
