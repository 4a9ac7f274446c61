// The kernel must not forward between the two gateway interfaces behind Sluice's back: while
// the dataplane runs, an nftables table `inet sluice` drops transit between them on the
// forward hook. AF_XDP traffic never reaches that hook; only what the XDP program passes to
// the kernel could, and none of that may be routed across. Installed at start, removed at stop
// (and replaced, not duplicated, when a crashed run left it behind). With DNS redirection the same
// table also holds a prerouting nat chain sending port-53 traffic from the inside interface to the
// local DNS proxy (conntrack rewrites the replies' source back to the resolver the workload asked).

import Foundation
import SluiceProcess

/// The nftables forward-path drop rule. Control plane only.
public final class ForwardPathBlock: @unchecked Sendable {
    /// The nftables table (family inet) that holds the rule.
    public static let tableName = "sluice"
    private var installed = true

    private init() {}

    /// Installs (or replaces) the table dropping forwarded traffic between the two interfaces.
    public static func install(inside: String, outside: String, dnsRedirectPort: Int? = nil) throws
        -> ForwardPathBlock
    {
        let redirect = dnsRedirectPort.map { port in
            """
                chain dns_redirect {
                    type nat hook prerouting priority dstnat; policy accept;
                    iifname "\(inside)" meta l4proto { udp, tcp } th dport 53 counter redirect to :\(port)
                }

            """
        } ?? ""
        // "table; delete table; table {...}" in one transaction: idempotent, atomic.
        let ruleset = """
            table inet \(tableName)
            delete table inet \(tableName)
            table inet \(tableName) {
                chain forward {
                    type filter hook forward priority filter - 10; policy accept;
                    iifname "\(inside)" oifname "\(outside)" counter drop
                    iifname "\(outside)" oifname "\(inside)" counter drop
                }
            \(redirect)}

            """
        try runNFT(["-f", "-"], input: ruleset)
        return ForwardPathBlock()
    }

    /// Removes the table. Idempotent.
    public func remove() {
        guard installed else { return }
        installed = false
        _ = try? ForwardPathBlock.runNFT(["delete", "table", "inet", ForwardPathBlock.tableName], input: nil)
    }

    /// Whether the table exists now (tests).
    public static func isInstalled() -> Bool {
        (try? runNFT(["list", "table", "inet", tableName], input: nil)) != nil
    }

    deinit { remove() }

    @discardableResult
    static func runNFT(_ arguments: [String], input: String?) throws -> String {
        let result: ProcessResult
        do {
            // Bounded: a wedged netlink must not hang the start or the shutdown of the gateway.
            result = try Subprocess.run(["nft"] + arguments, input: input.map { Data($0.utf8) }, timeout: 30)
        } catch {
            throw DataplaneError("\(error) (install nftables: scripts/setup.sh)")
        }
        guard result.status == 0, !result.timedOut else {
            let why = result.timedOut ? "timed out after 30 s" : result.stderr
            throw DataplaneError("nft \(arguments.joined(separator: " ")) failed: "
                + why.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return result.stdout
    }
}
