// Root-only end-to-end test of the gateway: `sluice run --dataplane xdp` as a process in a
// gateway namespace between a client and an upstream namespace, each link a veth pair with two
// queues:
//
//   client ns                gateway ns (sluice run)                    upstream ns
//   c0 10.77.T.2 ──veth──► gin 10.77.T.1 [XDP→AF_XDP q0,q1] gout 10.79.T.1 ──veth──► u0 10.79.T.2
//      fd77:T::2              fd77:T::1                      fd79:T::1            fd79:T::2
//
// The policy file allows UDP 7777, TCP 8080 and ICMP echo from the client network; everything
// else is denied. Checked: allowed traffic (UDP, TCP with curl, ping, IPv6) gets through with
// its replies, denied traffic does not, unsolicited inbound is dropped, flows use both queues,
// and SIGTERM detaches XDP and removes the nftables table. Everything it creates (namespaces,
// links, the process) is removed by defers, pass or fail. Skipped loudly when not root.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import SluiceDataplane

enum GatewayLab {
    /// Why the gateway test cannot run here, or nil.
    static let missingReason: String? = {
        if let reason = IntegrationEnvironment.missingReason { return reason }
        for tool in ["nft", "curl", "python3", "ethtool"] where !IntegrationEnvironment.toolPath.split(separator: ":")
            .contains(where: { access("\($0)/\(tool)", X_OK) == 0 }) {
            return "\(tool) not installed (run scripts/setup.sh)"
        }
        if sluiceExecutable == nil { return "the sluice executable is not built (swift build)" }
        return nil
    }()

    static var canRun: Bool {
        if let missingReason {
            FileHandle.standardError.write("SKIPPING gateway integration test: \(missingReason)\n".data(using: .utf8)!)
            return false
        }
        return true
    }

    /// `sluice` next to the test bundle (same build directory).
    static let sluiceExecutable: String? = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        var candidates: [String] = []
        if length > 0 {
            let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            // .../debug/SluicePackageTests.xctest, possibly a bundle directory one level deeper.
            for _ in 0..<3 {
                candidates.append(directory.appendingPathComponent("sluice").path)
                directory = directory.deletingLastPathComponent()
            }
        }
        candidates.append(IntegrationEnvironment.repositoryRoot + "/.build/debug/sluice")
        return candidates.first { access($0, X_OK) == 0 && !$0.hasSuffix(".xctest") }
    }()
}

@Suite(.serialized) struct GatewayIntegrationTests {
    static let policy = """
    {"mode": "enforce", "name": "lab-test", "policy": {"default_policy": "deny", "source_groups": [
      {"id": "clients", "sources": {"cidrs": ["10.77.0.0/16", "fd77::/16"]}, "rules": [
        {"id": "udp-echo", "action": "allow", "match": {"proto": "udp", "dst_ports": [7777]}},
        {"id": "web", "action": "allow", "match": {"proto": "tcp", "dst_ports": [8080]}},
        {"id": "ping", "action": "allow", "match": {"proto": "icmp"}},
        {"id": "ping6", "action": "allow", "match": {"proto": "icmpv6"}}
      ]}]}}
    """

    /// UDP echo on 7777 and 7778, HTTP on 8080 and 8081, on every address (both families).
    static let upstreamServer = """
    import socket, threading, http.server, socketserver
    def udp(port):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        while True:
            data, peer = s.recvfrom(2048); s.sendto(b"echo:" + data, peer)
    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        address_family = socket.AF_INET6
        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); super().server_bind()
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"sluice-upstream\\n"; self.send_response(200); self.send_header("Content-Length", str(len(body)))
            self.end_headers(); self.wfile.write(body)
        def log_message(self, *args): pass
    for port in (7777, 7778): threading.Thread(target=udp, args=(port,), daemon=True).start()
    for port in (8080, 8081): threading.Thread(target=Server(("::", port), Handler).serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
    """

    /// Sends one UDP datagram and waits for the echo; prints it or "timeout".
    static func udpProbe(_ host: String, _ port: Int, sourcePort: Int = 0) -> String {
        """
        import socket, sys
        family = socket.AF_INET6 if ":" in "\(host)" else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(2); s.bind(("", \(sourcePort)))
        s.sendto(b"probe", ("\(host)", \(port)))
        try: print(s.recvfrom(2048)[0].decode())
        except socket.timeout: print("timeout")
        """
    }

    @Test(.enabled(if: GatewayLab.canRun, "needs root, iproute2, nft, curl, python3 and a built sluice; see stderr"))
    func gatewayForwardsWhatThePolicyAllowsAndNothingElse() throws {
        let tag = getpid() % 200
        let client = "slc-c\(tag)"
        let gateway = "slc-g\(tag)"
        let upstream = "slc-u\(tag)"
        let clientV4 = "10.77.\(tag).2", gatewayInV4 = "10.77.\(tag).1"
        let upstreamV4 = "10.79.\(tag).2", gatewayOutV4 = "10.79.\(tag).1"
        let clientV6 = "fd77:\(tag)::2", upstreamV6 = "fd79:\(tag)::2"
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-gw-\(getpid())")
        var processes: [Process] = []
        defer {
            for process in processes where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            for namespace in [client, gateway, upstream] { _ = try? Shell.run(["ip", "netns", "del", namespace]) }
            try? FileManager.default.removeItem(at: work)
        }
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        for namespace in [client, gateway, upstream] {
            _ = try? Shell.run(["ip", "netns", "del", namespace])
            try Shell.run(["ip", "netns", "add", namespace])
            try Shell.run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        }
        // Two veth pairs of two queues each; the gateway ends are moved into the gateway namespace.
        try Shell.run(["ip", "-n", client, "link", "add", "c0", "numtxqueues", "2", "numrxqueues", "2", "type", "veth",
                       "peer", "name", "gin", "numtxqueues", "2", "numrxqueues", "2", "netns", gateway])
        try Shell.run(["ip", "-n", upstream, "link", "add", "u0", "numtxqueues", "2", "numrxqueues", "2", "type",
                       "veth", "peer", "name", "gout", "numtxqueues", "2", "numrxqueues", "2", "netns", gateway])
        func configure(_ namespace: String, _ interface: String, _ v4: String, _ v6: String) throws {
            try Shell.run(["ip", "-n", namespace, "addr", "add", "\(v4)/24", "dev", interface])
            try Shell.run(["ip", "-n", namespace, "addr", "add", "\(v6)/64", "dev", interface, "nodad"])
            try Shell.run(["ip", "-n", namespace, "link", "set", interface, "up"])
            _ = try? Shell.run(["ip", "netns", "exec", namespace, "ethtool", "-K", interface, "gro", "on"])
            // veth hands checksum work on to the receiver (CHECKSUM_PARTIAL); AF_XDP sees the raw
            // bytes and forwards them as they are, so the hosts must finish their checksums.
            if interface == "c0" || interface == "u0" {
                try Shell.run(["ip", "netns", "exec", namespace, "ethtool", "-K", interface, "tx", "off"])
            }
        }
        try configure(client, "c0", clientV4, clientV6)
        try configure(gateway, "gin", gatewayInV4, "fd77:\(tag)::1")
        try configure(gateway, "gout", gatewayOutV4, "fd79:\(tag)::1")
        try configure(upstream, "u0", upstreamV4, upstreamV6)
        try Shell.run(["ip", "-n", client, "route", "add", "default", "via", gatewayInV4])
        try Shell.run(["ip", "-n", client, "-6", "route", "add", "default", "via", "fd77:\(tag)::1"])
        try Shell.run(["ip", "-n", upstream, "route", "add", "10.77.0.0/16", "via", gatewayOutV4])
        try Shell.run(["ip", "-n", upstream, "-6", "route", "add", "fd77::/16", "via", "fd79:\(tag)::1"])

        let server = try Shell.start(
            ["ip", "netns", "exec", upstream, "python3", "-c", GatewayIntegrationTests.upstreamServer])
        processes.append(server)
        let policyFile = work.appendingPathComponent("policy.json")
        try GatewayIntegrationTests.policy.write(to: policyFile, atomically: true, encoding: .utf8)
        let logFile = work.appendingPathComponent("sluice.log")
        FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let sluice = Process()
        sluice.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sluice.arguments = ["ip", "netns", "exec", gateway, GatewayLab.sluiceExecutable!, "run",
                            "--data-dir", work.appendingPathComponent("data").path, "--api-listen", "127.0.0.1:0",
                            "--api-plaintext", "--dataplane", "xdp", "--inside", "gin", "--outside", "gout",
                            "--policy", policyFile.path, "--queues", "2", "--cores", "0,1", "--flow-table-size", "4096"]
        sluice.environment = ["PATH": IntegrationEnvironment.toolPath]
        let logHandle = try FileHandle(forWritingTo: logFile)
        sluice.standardOutput = logHandle
        sluice.standardError = logHandle
        try sluice.run()
        processes.append(sluice)
        func log() -> String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }
        let deadline = Date().addingTimeInterval(30)
        while !log().contains("management API listening") && sluice.isRunning && Date() < deadline {
            usleep(100_000)
        }
        try #require(sluice.isRunning && log().contains("policy file in force"), "sluice run started: \(log())")
        #expect(try Shell.run(["ip", "-n", gateway, "link", "show", "gin"]).contains("xdp"))
        let table = try Shell.run(["ip", "netns", "exec", gateway, "nft", "list", "table", "inet", "sluice"])
        #expect(table.contains("drop"))

        func inClient(_ arguments: [String]) -> (ok: Bool, output: String) {
            do {
                return (true, try Shell.run(["ip", "netns", "exec", client] + arguments))
            } catch {
                return (false, "\(error)")
            }
        }
        // The first packets of a flow may wait for neighbour resolution (dropped, resolved,
        // retried): allow a few attempts for the allowed cases.
        func eventually(_ attempts: Int = 5, _ probe: () -> Bool) -> Bool {
            for _ in 0..<attempts where probe() { return true }
            return false
        }
        let udpV4 = eventually { inClient(["python3", "-c", GatewayIntegrationTests.udpProbe(upstreamV4, 7777)]).output
            .contains("echo:probe") }
        #expect(udpV4, "allowed UDP and its reply pass; log: \(log())")
        let deniedUDP = inClient(["python3", "-c", GatewayIntegrationTests.udpProbe(upstreamV4, 7778)])
        #expect(deniedUDP.output.contains("timeout"),
                "denied UDP port")
        let http = eventually { inClient(["curl", "-s", "-m", "3", "http://\(upstreamV4):8080/"]).output
            .contains("sluice-upstream") }
        #expect(http, "allowed TCP (curl)")
        #expect(!inClient(["curl", "-s", "-m", "2", "http://\(upstreamV4):8081/"]).ok, "denied TCP port")
        #expect(eventually { inClient(["ping", "-c", "1", "-W", "2", upstreamV4]).ok }, "ICMP echo")
        // TTL 1: the gateway answers with time exceeded from its inside address.
        let expiring = inClient(["bash", "-c", "ping -c 1 -t 1 -W 2 \(upstreamV4); true"])
        #expect(expiring.output.contains("From \(gatewayInV4)") && expiring.output.contains("Time to live exceeded"),
                "ICMP time exceeded: \(expiring.output)")
        let http6 = eventually { inClient(["curl", "-s", "-m", "3", "-g", "http://[\(upstreamV6)]:8080/"]).output
            .contains("sluice-upstream") }
        #expect(http6, "IPv6 TCP")
        #expect(eventually { inClient(["ping", "-6", "-c", "1", "-W", "2", upstreamV6]).ok }, "ICMPv6 echo")
        let deniedUDP6 = inClient(["python3", "-c", GatewayIntegrationTests.udpProbe(upstreamV6, 7778)])
        #expect(deniedUDP6.output.contains("timeout"))

        // Unsolicited inbound: the upstream cannot reach the client, neither by ping nor by UDP.
        let clientListener = try Shell.start(["ip", "netns", "exec", client, "python3", "-c", """
            import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", 9999)); s.settimeout(3)
            try: print("got", s.recvfrom(100)[0])
            except socket.timeout: print("nothing")
            """])
        processes.append(clientListener)
        usleep(300_000)
        _ = try? Shell.run(["ip", "netns", "exec", upstream, "python3", "-c",
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                + "s.sendto(b'x', ('\(clientV4)', 9999))"])
        #expect(!((try? Shell.run(["ip", "netns", "exec", upstream, "ping", "-c", "1", "-W", "1", clientV4])) != nil),
                "unsolicited ping from the outside")
        let heard = String(
            decoding: (clientListener.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        clientListener.waitUntilExit()
        #expect(heard.contains("nothing"), "unsolicited UDP from the outside: \(heard)")

        // Many flows (distinct source ports) spread over both rx queues of the inside interface.
        for port in 0..<16 {
            let probe = GatewayIntegrationTests.udpProbe(upstreamV4, 7777, sourcePort: 41000 + port)
            _ = inClient(["python3", "-c", probe])
        }
        let stats = (try? Shell.run(["ip", "netns", "exec", gateway, "ethtool", "-S", "gin"])) ?? ""
        let perQueue = (0..<2).map { queue in
            stats.split(separator: "\n").first { $0.contains("rx_queue_\(queue)_xdp_redirect") }
                .flatMap { UInt64($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) } ?? 0
        }
        #expect(perQueue.allSatisfy { $0 > 0 }, "both queues received transit traffic: \(perQueue)")

        // A policy change through the API cuts a live flow it now denies; others keep working.
        // One client process keeps a UDP socket (one 5-tuple) and probes before and after.
        let flow = try Shell.start(["ip", "netns", "exec", client, "python3", "-u", "-c", """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
            def probe():
                for _ in range(5):
                    s.sendto(b"flow", ("\(upstreamV4)", 7777))
                    try: return s.recvfrom(100)[0].decode()
                    except socket.timeout: pass
                return "timeout"
            print("before", probe(), flush=True)
            sys.stdin.readline()
            s.settimeout(0.5)
            print("after", probe(), flush=True)
            """])
        processes.append(flow)
        let flowOutput = (flow.standardOutput as! Pipe).fileHandleForReading
        var before = ""
        while !before.contains("\n"), let chunk = try? flowOutput.read(upToCount: 1), !chunk.isEmpty {
            before += String(decoding: chunk, as: UTF8.self)
        }
        #expect(before.contains("before echo:flow"), "the UDP flow works before the change: \(before)")
        let token = try Shell.run(["ip", "netns", "exec", gateway, GatewayLab.sluiceExecutable!, "token", "create",
                                   "--data-dir", work.appendingPathComponent("data").path, "--role", "admin"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let apiURL = log().split(separator: "\n").first { $0.contains("management API listening on") }
            .map { String($0[$0.range(of: "http://")!.lowerBound...]) } ?? ""
        let tcpOnly = GatewayIntegrationTests.policy.replacingOccurrences(
            of: "{\"id\": \"udp-echo\", \"action\": \"allow\", "
                + "\"match\": {\"proto\": \"udp\", \"dst_ports\": [7777]}},",
            with: "")
        #expect(!tcpOnly.contains("udp-echo"))
        let write = try Shell.run(["ip", "netns", "exec", gateway, "curl", "-s", "-f", "-X", "POST",
                                   "-H", "Authorization: Bearer \(token)", "-H", "Content-Type: application/json",
                                   "--data", tcpOnly, "\(apiURL)/api/v1/policies"])
        #expect(write.contains("confirmed"), "the API deployed the new policy and the workers confirmed: \(write)")
        // The earlier denies reached the API as findings (worker event rings → FindingRecorder).
        let findings = try Shell.run(["ip", "netns", "exec", gateway, "curl", "-s", "-f",
                                      "-H", "Authorization: Bearer \(token)", "\(apiURL)/api/v1/audit/findings"])
        #expect(findings.contains("packet_deny") && findings.contains("7778") && findings.contains(upstreamV4),
                "denied UDP 7778 is an audit finding: \(findings)")
        (flow.standardInput as! Pipe).fileHandleForWriting.write("go\n".data(using: .utf8)!)
        let after = String(decoding: flowOutput.readDataToEndOfFile(), as: UTF8.self)
        flow.waitUntilExit()
        #expect(after.contains("after timeout"), "the live UDP flow is cut by the new policy: \(after)")
        #expect(inClient(["curl", "-s", "-m", "3", "http://\(upstreamV4):8080/"]).output.contains("sluice-upstream"),
                "TCP 8080 is still allowed")

        // SIGTERM: graceful shutdown detaches XDP and removes the forward-path block.
        kill(sluice.processIdentifier, SIGTERM)
        let stopDeadline = Date().addingTimeInterval(15)
        while sluice.isRunning && Date() < stopDeadline { usleep(100_000) }
        #expect(!sluice.isRunning, "sluice stopped on SIGTERM; log: \(log())")
        if !sluice.isRunning { #expect(sluice.terminationStatus == 0, "clean exit; log: \(log())") }
        #expect(!(try Shell.run(["ip", "-n", gateway, "link", "show", "gin"])).contains("xdp"), "XDP detached")
        #expect((try? Shell.run(["ip", "netns", "exec", gateway, "nft", "list", "table", "inet", "sluice"])) == nil,
                "nftables table removed")
    }
}
