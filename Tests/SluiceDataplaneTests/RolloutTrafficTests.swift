// Root-only: the rollout workflow of the spec's guide (000) with real traffic through the AF_XDP
// gateway. A policy that allows only TCP 8080 is written through the API in audit mode; UDP 7777
// is a would-be deny. Audit: the UDP flow passes, the wiretap shows it live with verdict `audit`,
// and an `enforced: false` finding appears. `sluice policy mode rollout enforce` (the CLI): the
// same traffic is dropped, the finding is `enforced: true`, the wiretap shows `deny`. Flipping back
// to audit lets it through again. Topology and cleanup: GatewayTopology.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

@Suite(.serialized) struct RolloutTrafficTests {
    static let policy = """
    {"default_policy": "deny", "source_groups": [
      {"id": "clients", "sources": {"cidrs": ["10.77.0.0/16", "fd77::/16"]}, "rules": [
        {"id": "web", "action": "allow", "match": {"proto": "tcp", "dst_ports": [8080]}}]}]}
    """

    @Test(.enabled(if: GatewayLab.canRun, "needs root, iproute2, nft, curl, python3 and a built sluice; see stderr"))
    func auditThenEnforceThenBackWithRealTraffic() throws {
        let lab = try GatewayTopology(policy: nil)
        defer { lab.close() }
        let token = try lab.adminToken()
        let api = lab.apiURL
        func curl(_ arguments: [String]) -> String {
            lab.inNamespace(lab.gateway, ["curl", "-s", "-H", "Authorization: Bearer \(token)"] + arguments).output
        }
        func sluiceCLI(_ arguments: [String]) -> (ok: Bool, output: String) {
            lab.inNamespace(lab.gateway, [GatewayLab.sluiceExecutable!] + arguments + ["--server", api, "--token", token])
        }
        /// Streams the wiretap (UDP to 7777) while the client sends a few datagrams on one socket.
        func watchUDPFlow() throws -> (echoed: Bool, wiretap: String) {
            let tap = try lab.start(in: lab.gateway, [
                "curl", "-s", "-N", "-m", "4", "-H", "Authorization: Bearer \(token)",
                "\(api)/api/v1/wiretap/stream?dst_port=7777"])
            usleep(500_000)
            let sender = lab.inClient(["python3", "-c", """
                import socket, time
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3); got = False
                for _ in range(8):
                    s.sendto(b"rollout", ("\(lab.upstreamV4)", 7777))
                    try: s.recvfrom(100); got = True
                    except socket.timeout: pass
                    time.sleep(0.1)
                print("echoed" if got else "silent")
                """])
            let stream = tap.wait().stdout
            return (sender.output.contains("echoed"), stream)
        }
        func findings() -> String {
            curl(["\(api)/api/v1/audit/findings?finding_type=packet_deny"])
        }

        let created = curl(["-X", "POST", "-H", "Content-Type: application/json", "--data",
                            "{\"mode\": \"audit\", \"name\": \"rollout\", \"policy\": \(RolloutTrafficTests.policy)}",
                            "\(api)/api/v1/policies"])
        #expect(created.contains("\"dataplane\":\"confirmed\""),
                "the audit policy reached the workers: \(created)")

        // Audit: the would-be deny passes, is seen live as `audit`, and recorded unenforced.
        var (echoed, stream) = try watchUDPFlow()
        if !echoed { (echoed, stream) = try watchUDPFlow() }  // first packets may wait for ARP
        #expect(echoed, "audit mode lets the would-be deny through; log: \(lab.log())")
        #expect(stream.contains("event: flow") && stream.contains("\"verdict\":\"audit\"")
                && stream.contains("\"dst\":\"\(lab.upstreamV4)\""),
                "the wiretap shows the live flow as audit: \(stream)")
        #expect(stream.contains("\"policy_id\""), "wiretap events name the policy: \(stream)")
        let audited = findings()
        #expect(audited.contains("7777") && audited.contains("\"enforced\":false"),
                "an unenforced finding for UDP 7777: \(audited)")

        // Promote with the CLI: the same traffic is now dropped and the finding is enforced.
        let promote = sluiceCLI(["policy", "mode", "rollout", "enforce"])
        #expect(promote.ok, "sluice policy mode rollout enforce: \(promote.output)")
        let enforced = try watchUDPFlow()
        #expect(!enforced.echoed, "enforce mode drops UDP 7777")
        #expect(enforced.wiretap.contains("\"verdict\":\"deny\""), "the wiretap shows the deny: \(enforced.wiretap)")
        let afterPromotion = findings()
        #expect(afterPromotion.contains("\"enforced\":true"), "an enforced finding after promotion: \(afterPromotion)")
        #expect(lab.eventually { lab.inClient(["curl", "-s", "-m", "3", "http://\(lab.upstreamV4):8080/"]).output
            .contains("sluice-upstream") }, "the allowed TCP rule keeps working")

        // Flip back: traffic passes again.
        let back = sluiceCLI(["policy", "mode", "rollout", "audit"])
        #expect(back.ok, "sluice policy mode rollout audit: \(back.output)")
        #expect(lab.eventually(3) { lab.udpProbe(lab.upstreamV4, 7777).contains("echo:probe") },
                "back in audit mode the flow passes again")
        let history = sluiceCLI(["policy", "history", "rollout", "--json"])
        #expect(history.output.contains("enforce") && history.output.contains("audit"), "history: \(history.output)")
    }
}
