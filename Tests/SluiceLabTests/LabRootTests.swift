// `sluice lab up/down` end to end, as root: the built binary builds a lab under its own prefix (so
// a developer's running lab is untouched), the upstream's HTTP, TLS and DNS servers answer from the
// gateway namespace, the gateway's API answers from the client, nothing bypasses the gateway, `up`
// over a running lab starts clean, and `down` leaves no namespace, process or file behind.
import Foundation
import SluiceLab
import SluiceProcess
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The `sluice` binary next to this test bundle (built by `swift build --build-tests`).
let sluiceBinary: String = {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    while directory.path != "/"
        && !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("sluice").path)
    {
        directory = directory.deletingLastPathComponent()
    }
    return directory.appendingPathComponent("sluice").path
}()

let isRoot = geteuid() == 0
let hasTools = ["ip", "nsd", "openssl", "curl", "kdig", "ethtool", "ss"].allSatisfy {
    (try? Subprocess.locate($0)) != nil
}

/// What every lab suite needs, each a loud skip naming the reason: `@Suite(.serialized, .labNeeds...)`.
extension Trait where Self == ConditionTrait {
    static var labNeedsRoot: Self {
        .enabled(if: isRoot, "needs root: network namespaces, veth pairs and XDP (run the tests as root)")
    }
    static var labNeedsTools: Self {
        .enabled(if: hasTools, "needs ip, nsd, openssl, curl, kdig, ethtool, ss: run scripts/setup.sh")
    }
    static var labNeedsSluiceBinary: Self {
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: sluiceBinary),
            "the sluice binary is not built next to the tests: run `swift build --build-tests` first")
    }
}

@Suite(.serialized, .labNeedsRoot, .labNeedsTools, .labNeedsSluiceBinary)
struct LabRootTests {
    static let prefix = "sluicet"
    let lab = LabTopology(prefix: LabRootTests.prefix)
    let runner = SystemCommandRunner()

    func sluice(_ arguments: [String]) throws -> CommandResult {
        try runner.run([sluiceBinary] + arguments)
    }

    func inNamespace(_ namespace: String, _ argv: [String]) throws -> CommandResult {
        try runner.run(["ip", "netns", "exec", namespace] + argv)
    }

    @Test func upServesEverythingAndDownLeavesNothing() throws {
        // Cleanup also when an expectation throws halfway.
        defer { _ = try? sluice(["lab", "down", "--prefix", Self.prefix]) }

        // SLUICE_LAB_GATEWAY_BINARY runs another build as the gateway (e.g. a dataplane branch's),
        // so the transit expectations below are checked against a real AF_XDP dataplane.
        let gatewayBinary = ProcessInfo.processInfo.environment["SLUICE_LAB_GATEWAY_BINARY"]
        let up = try sluice(
            ["lab", "up", "--json", "--prefix", Self.prefix] + (gatewayBinary.map { ["--gateway-binary", $0] } ?? []))
        try #require(up.status == 0, "lab up failed: \(up.stderr)")
        let info = try JSONDecoder().decode(LabInfo.self, from: Data(up.stdout.utf8))
        let gw = lab.gatewayInside.namespace
        let upstream = lab.upstream.namespace
        let client = lab.client.namespace

        // Namespaces and the two-queue veths.
        let namespaces = try runner.check(["ip", "netns", "list"])
        for namespace in lab.namespaces { #expect(namespaces.contains(namespace)) }
        for (namespace, interface) in [(gw, "inside0"), (gw, "outside0"), (client, "eth0"), (upstream, "eth0")] {
            let detail = try runner.check(["ip", "-n", namespace, "-d", "link", "show", interface])
            #expect(detail.contains("numtxqueues 2 numrxqueues 2"), "\(namespace)/\(interface): \(detail)")
        }
        #expect(try inNamespace(gw, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout == "0\n")
        #expect(try inNamespace(client, ["cat", "/etc/resolv.conf"]).stdout.contains("nameserver 10.77.1.1"))

        // HTTP, IPv4 and IPv6, from the gateway namespace.
        for url in ["http://10.77.2.2/", "http://[fd77:2::2]/", "http://10.77.2.3/"] {
            let page = try inNamespace(gw, ["curl", "-sS", "--max-time", "5", url])
            #expect(page.status == 0 && page.stdout.contains("sluice lab upstream"), "\(url): \(page.stderr)")
        }

        // TLS with the lab CA: each name gets its own certificate, verified by name.
        for (name, address) in [
            ("api.lab.sluice.test", "10.77.2.2"), ("blocked.lab.sluice.test", "10.77.2.3"),
            ("www.lab.sluice.test", "[fd77:2::2]"),
        ] {
            let result = try inNamespace(
                gw,
                [
                    "curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}",
                    "--cacert", info.upstream.caCertificate, "--resolve", "\(name):443:\(address)", "https://\(name)/",
                ])
            #expect(result.stdout == "200", "TLS \(name) at \(address): \(result.stderr)")
        }

        // DNS: the CNAME chain, the short TTL, AAAA over IPv6, the denied name's own address.
        let chain = try inNamespace(gw, ["kdig", "+short", "+time=2", "@10.77.2.2", "alias.lab.sluice.test", "A"])
        #expect(chain.stdout == "www.lab.sluice.test.\napi.lab.sluice.test.\n10.77.2.2\n", "\(chain.stderr)")
        let short = try inNamespace(
            gw, ["kdig", "+noall", "+answer", "+time=2", "@10.77.2.2", "short.lab.sluice.test"])
        #expect(
            short.stdout.contains("\t5\tIN\tA\t10.77.2.2") || short.stdout.contains(" 5 IN A 10.77.2.2"),
            "short TTL: \(short.stdout)")
        let v6 = try inNamespace(gw, ["kdig", "+short", "+time=2", "@fd77:2::2", "blocked.lab.sluice.test", "AAAA"])
        #expect(v6.stdout == "fd77:2::3\n", "\(v6.stderr)")

        // The gateway and its API, reached from the client (traffic to the gateway itself).
        let api = try #require(info.api)
        let token = try #require(info.token)
        let policies = try inNamespace(
            client,
            [
                "curl", "-sS", "--max-time", "5", "-H", "Authorization: Bearer \(token)", "\(api)/api/v1/policies",
            ])
        #expect(policies.stdout.contains("\"lab\"") && policies.stdout.contains("audit"), "\(policies.stdout)")
        let anonymous = try inNamespace(
            client,
            [
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                "--max-time", "5", "\(api)/api/v1/policies",
            ])
        #expect(anonymous.stdout == "401")

        // Transit: with the AF_XDP dataplane the audit policy lets the client through; without it
        // nothing may pass, because the lab never turns on kernel forwarding.
        let transit = try inNamespace(client, ["curl", "-sS", "--max-time", "3", "http://10.77.2.2/"])
        if info.gateway.dataplane == "xdp" {
            #expect(transit.status == 0, "audit mode should let the client reach the upstream: \(transit.stderr)")
        } else {
            #expect(transit.status != 0, "a gateway without a dataplane forwarded traffic: a bypass")
        }

        // exec and status.
        let exec = try sluice([
            "lab", "exec", "--prefix", Self.prefix, "upstream", "--", "sh", "-c", "echo $SLUICE_TOKEN",
        ])
        #expect(exec.stdout == "\(token)\n")
        #expect(try sluice(["lab", "status", "--prefix", Self.prefix]).status == 0)

        // Processes of this lab, to check that down stops them all.
        var pids: [Int32] = []
        for namespace in lab.namespaces {
            pids += try runner.check(["ip", "netns", "pids", namespace]).split(separator: "\n").compactMap { Int32($0) }
        }
        #expect(pids.count >= 4, "nsd, http, tls and the gateway should run: \(pids)")

        // up over a running lab (what a crash leaves behind) starts clean.
        let again = try sluice(["lab", "up", "--no-gateway", "--prefix", Self.prefix])
        #expect(again.status == 0, "second up: \(again.stderr)")
        for pid in pids { #expect(!alive(pid), "pid \(pid) of the first lab survived the second up") }
        #expect(try inNamespace(gw, ["curl", "-sS", "--max-time", "5", "http://10.77.2.2/"]).status == 0)

        var newPids: [Int32] = []
        for namespace in lab.namespaces {
            newPids += try runner.check(["ip", "netns", "pids", namespace]).split(separator: "\n").compactMap {
                Int32($0)
            }
        }
        let down = try sluice(["lab", "down", "--prefix", Self.prefix])
        #expect(down.status == 0, "down: \(down.stderr)")
        let after = try runner.check(["ip", "netns", "list"])
        for namespace in lab.namespaces { #expect(!after.contains(namespace), "\(namespace) survived down") }
        for pid in newPids { #expect(!alive(pid), "pid \(pid) survived down") }
        #expect(!FileManager.default.fileExists(atPath: lab.stateDirectory))
        #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(lab.client.namespace)"))
        let links = try runner.check(["ip", "-o", "link", "show"])
        #expect(!links.contains("inside0") && !links.contains("outside0"), "a lab link in the host namespace")

        // down again: nothing to do, still fine.
        #expect(try sluice(["lab", "down", "--prefix", Self.prefix]).status == 0)
    }

    private func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }
}
