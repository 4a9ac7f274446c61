// The lab's pure parts, on any machine without root: the topology and its command plan, the
// upstream's files, the gateway's command line, the JSON contract, and the example policy.
import Foundation
import SluiceLab
import SluiceProcess
import SluicePolicy
import Testing

/// The repository root, from this file's path (Tests/SluiceLabTests/LabPlanTests.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

struct LabPlanTests {
    let lab = LabTopology()

    @Test func namesAndAddressesFollowThePrefix() {
        #expect(lab.namespaces == ["sluice-client", "sluice-gw", "sluice-up"])
        #expect(lab.stateDirectory == "/run/sluice-lab")
        #expect(lab.apiURL == "http://10.77.1.1:8080")
        let other = LabTopology(prefix: "sluicet")
        #expect(other.namespaces == ["sluicet-client", "sluicet-gw", "sluicet-up"])
        #expect(other.stateDirectory == "/run/sluicet-lab")
        #expect(other.clientResolvConfPath == "/etc/netns/sluicet-client/resolv.conf")
        // Addresses stay the same: each lab lives in its own namespaces.
        #expect(
            other.client
                == LabHost(
                    namespace: "sluicet-client", interface: "eth0", ipv4: lab.client.ipv4, ipv6: lab.client.ipv6))
    }

    @Test func addressesAreLabOnlyRanges() {
        for host in [lab.client, lab.gatewayInside, lab.gatewayOutside, lab.upstream, lab.upstreamBlocked] {
            #expect(host.ipv4.address.hasPrefix("10.77."), "\(host.ipv4.address) is not in 10.77.0.0/16")
            #expect(host.ipv6.address.hasPrefix("fd77:"), "\(host.ipv6.address) is not ULA fd77::/16")
        }
        #expect(lab.client.ipv4.network == "10.77.1.0/24")
        #expect(lab.client.ipv6.network == "fd77:1::/64")
        #expect(lab.gatewayInside.ipv4.network == lab.client.ipv4.network)
        #expect(lab.gatewayOutside.ipv6.network == lab.upstream.ipv6.network)
    }

    @Test func prefixValidation() {
        #expect(LabTopology.validatePrefix("sluice") == nil)
        #expect(LabTopology.validatePrefix("lab2") == nil)
        for bad in ["", "Sluice", "2lab", "a-b", "a/b", "averyveryverylongname", "../x"] {
            #expect(LabTopology.validatePrefix(bad) != nil, "'\(bad)' should be refused")
        }
    }

    @Test func vethPairsHaveTwoQueuesAndLiveOnlyInLabNamespaces() {
        let links = lab.networkPlan().filter { $0.argv.starts(with: ["ip", "link", "add"]) }
        #expect(links.count == 2)
        for step in links {
            // Both ends name their namespace: nothing is ever created in the host namespace.
            #expect(step.argv.filter { $0 == "netns" }.count == 2, "\(step)")
            #expect(step.argv.filter { $0 == "numtxqueues" }.count == 2, "\(step)")
            #expect(step.argv.filter { $0 == "numrxqueues" }.count == 2, "\(step)")
            #expect(step.description.contains("numtxqueues 2 numrxqueues 2 type veth"), "\(step)")
        }
        #expect(
            links[0].description == """
                ip link add inside0 netns sluice-gw numtxqueues 2 numrxqueues 2 type veth peer name eth0 \
                netns sluice-client numtxqueues 2 numrxqueues 2
                """)
        #expect(links[1].argv.contains("outside0") && links[1].argv.contains("sluice-up"))
    }

    @Test func everyStepRunsInALabNamespaceAfterItExists() {
        let plan = lab.networkPlan()
        var created: Set<String> = []
        for step in plan {
            if step.argv.starts(with: ["ip", "netns", "add"]) {
                created.insert(step.argv[3])
                continue
            }
            let named = lab.namespaces.filter { step.argv.contains($0) }
            #expect(!named.isEmpty, "step outside the lab's namespaces: \(step)")
            for namespace in named {
                #expect(created.contains(namespace), "\(namespace) used before creation: \(step)")
            }
            #expect(!step.mayFail, "a setup step must not hide its failure: \(step)")
        }
        #expect(created == Set(lab.namespaces))
    }

    @Test func gatewayNeverForwardsInTheKernel() {
        let plan = lab.networkPlan().map(\.description)
        #expect(
            plan.contains("ip netns exec sluice-gw sysctl -q -w net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0"))
        for line in plan {
            #expect(!line.contains("forward=1") && !line.contains("forwarding=1"), "a bypass: \(line)")
            #expect(!line.contains("nft"), "the lab leaves nftables to the dataplane: \(line)")
        }
    }

    @Test func routesAddressesAndOffloads() {
        let plan = lab.networkPlan().map(\.description)
        #expect(plan.contains("ip -n sluice-client route add default via 10.77.1.1"))
        #expect(plan.contains("ip -n sluice-client -6 route add default via fd77:1::1"))
        #expect(plan.contains("ip -n sluice-up route add default via 10.77.2.1"))
        #expect(plan.contains("ip -n sluice-up -6 route add default via fd77:2::1"))
        #expect(plan.contains("ip -n sluice-gw addr add 10.77.1.1/24 dev inside0"))
        #expect(plan.contains("ip -n sluice-gw addr add fd77:2::1/64 dev outside0 nodad"))
        #expect(plan.contains("ip -n sluice-up addr add 10.77.2.3/24 dev eth0"))
        // The gateway's peers: GRO for redirected frames, no checksum offload for AF_XDP copies.
        #expect(plan.contains("ip netns exec sluice-client ethtool -K eth0 gro on tx off"))
        #expect(plan.contains("ip netns exec sluice-up ethtool -K eth0 gro on tx off"))
        for line in plan where line.contains(" addr add ") && line.contains("fd77:") {
            #expect(line.hasSuffix(" nodad"), "\(line)")
        }
        // DAD is off before the first veth exists.
        let dad = plan.lastIndex { $0.contains("accept_dad=0") }!
        let firstLink = plan.firstIndex { $0.hasPrefix("ip link add") }!
        #expect(dad < firstLink)
        #expect(lab.clientResolvConf.contains("nameserver 10.77.1.1\n"))
        #expect(lab.clientResolvConf.contains("nameserver fd77:1::1\n"))
    }

    @Test func teardownRemovesEveryNamespaceAndToleratesAbsence() {
        let plan = lab.teardownPlan()
        let expected = lab.namespaces.map { "ip netns del \($0)" }
        #expect(plan.map { $0.description } == expected)
        #expect(plan.allSatisfy { $0.mayFail })
    }

    @Test func zoneHasTheRecordsTheTestsNeed() throws {
        let zone = lab.zoneFile(serial: 1_700_000_000)
        #expect(zone.contains("$ORIGIN lab.sluice.test."))
        #expect(zone.contains("api      IN A     10.77.2.2"))
        #expect(zone.contains("api      IN AAAA  fd77:2::2"))
        #expect(zone.contains("www      IN CNAME api.lab.sluice.test."))
        #expect(zone.contains("alias    IN CNAME www.lab.sluice.test."))
        #expect(zone.contains("short 5 IN A   10.77.2.2"))
        #expect(zone.contains("blocked  IN A     10.77.2.3"))
        // nsd's own checker, when installed (no root needed).
        guard let checker = try? Subprocess.locate("nsd-checkzone") else { return }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lab-\(UUID().uuidString).zone").path
        try zone.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try SystemCommandRunner().run([checker, lab.zone, file])
        #expect(result.status == 0, "nsd-checkzone: \(result.stdout) \(result.stderr)")
    }

    @Test func nsdConfigurationAndServices() {
        let paths = LabPaths(lab)
        let config = lab.nsdConfiguration(paths)
        #expect(config.contains("ip-address: 10.77.2.2\n"))
        #expect(config.contains("ip-address: fd77:2::2\n"))
        #expect(config.contains("zonefile: \"lab.sluice.test.zone\""))
        #expect(config.contains("control-enable: no"))
        #expect(lab.serviceCommand(.dns, paths) == ["nsd", "-d", "-c", "/run/sluice-lab/nsd/nsd.conf"])
        #expect(lab.serviceCommand(.http, paths).contains("80"))
        let tls = lab.serviceCommand(.tls, paths)
        #expect(tls.starts(with: ["openssl", "s_server", "-accept", "443"]))
        #expect(tls.contains("blocked.lab.sluice.test"))
        #expect(paths.pidFile("nsd") == "/run/sluice-lab/pids/nsd.pid")
        #expect(paths.logFile("gateway") == "/run/sluice-lab/logs/gateway.log")
    }

    @Test func certificatesNameTheUpstreamServices() {
        let plan = lab.certificatePlan(LabPaths(lab)).map(\.description)
        #expect(plan.count == 3)
        #expect(plan[0].contains("CA:TRUE"))
        #expect(
            plan[1].contains(
                "subjectAltName=DNS:api.lab.sluice.test,DNS:www.lab.sluice.test,DNS:alias.lab.sluice.test,"
                    + "DNS:short.lab.sluice.test,IP:10.77.2.2"))
        #expect(plan[2].contains("subjectAltName=DNS:blocked.lab.sluice.test,IP:10.77.2.3"))
        #expect(plan[2].contains("-CA /run/sluice-lab/tls/ca.pem"))
    }

    @Test func gatewayWithoutDataplaneRunsManagementOnlyAndSaysSo() {
        let launch = GatewayLaunch(
            sluice: "/x/sluice", runHelp: "--data-dir <data-dir>\n--dataplane <dataplane>", topology: lab,
            paths: LabPaths(lab))
        #expect(launch.dataplane == "none")
        #expect(!launch.dnsProxy)
        #expect(
            launch.argv == [
                "/x/sluice", "run", "--data-dir", "/run/sluice-lab/gateway", "--api-listen", "10.77.1.1:8080",
                "--api-plaintext", "--api-plaintext-any-address", "--dataplane", "none",
            ])
        #expect(launch.warnings.count == 2)
        #expect(launch.warnings[0].contains("NOTHING is forwarded"))
    }

    @Test func gatewayWithDataplaneAndDNSProxy() {
        let help = "--inside <inside>  --outside <outside> --policy <policy> --dns-listen <a> --dns-upstream <b>"
        let launch = GatewayLaunch(sluice: "sluice", runHelp: help, topology: lab, paths: LabPaths(lab))
        #expect(launch.dataplane == "xdp")
        #expect(launch.dnsProxy)
        #expect(launch.warnings.isEmpty)
        let line = launch.argv.joined(separator: " ")
        #expect(
            line.hasSuffix(
                "--dataplane xdp --inside inside0 --outside outside0 "
                    + "--dns-listen 10.77.1.1:53 --dns-listen [fd77:1::1]:53 --dns-upstream 10.77.2.2:53"))
    }

    @Test func jsonCarriesTheContractKeysWithNullsWithoutAGateway() throws {
        let info = lab.baseInfo(LabPaths(lab))
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(try info.jsonText().utf8)) as? [String: Any])
        #expect(object["api"] is NSNull)
        #expect(object["token"] is NSNull)
        let client = try #require(object["client"] as? [String: Any])
        #expect(client["netns"] as? String == "sluice-client")
        #expect(client["ipv4"] as? String == "10.77.1.2")
        #expect(client["ipv6"] as? String == "fd77:1::2")
        let upstream = try #require(object["upstream"] as? [String: Any])
        for key in ["netns", "ipv4", "ipv6", "http_port", "tls_port", "dns_zone"] {
            #expect(upstream[key] != nil, "upstream.\(key) missing")
        }
        #expect(upstream["http_port"] as? Int == 80)
        #expect(upstream["dns_zone"] as? String == "lab.sluice.test")
        let gateway = try #require(object["gateway"] as? [String: Any])
        #expect(gateway["netns"] as? String == "sluice-gw")
        #expect(gateway["inside"] as? String == "inside0")
        #expect(gateway["outside"] as? String == "outside0")
        // And it reads back.
        #expect(try JSONDecoder().decode(LabInfo.self, from: Data(try info.jsonText().utf8)) == info)
    }

    @Test func examplePolicyIsValidAuditAndCoversTheLab() throws {
        let path = repositoryRoot.appendingPathComponent("deploy/lab-policy.json").path
        let bytes = try #require(FileManager.default.contents(atPath: path), "missing \(path)")
        let parsed = try PolicyParser.parseRequest(jsonBytes: [UInt8](bytes))
        #expect(parsed.value.mode == .audit)
        #expect(parsed.value.name == "lab")
        #expect(try LabController.policyName(ofFile: path) == "lab")
        let text = String(decoding: bytes, as: UTF8.self)
        for needle in [lab.client.ipv4.network, lab.client.ipv6.network, "blocked.lab.sluice.test", "\"deny\""] {
            #expect(text.contains(needle), "lab-policy.json lacks \(needle)")
        }
    }
}
