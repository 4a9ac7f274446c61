// The namespaces, links, upstream servers and `sluice run` process that the root-only gateway
// tests share:
//
//   client ns                gateway ns (sluice run)                    upstream ns
//   c0 10.77.T.2 ──veth──► gin 10.77.T.1 [XDP→AF_XDP q0,q1] gout 10.79.T.1 ──veth──► u0 10.79.T.2
//      fd77:T::2              fd77:T::1                      fd79:T::1            fd79:T::2
//
// The upstream answers UDP echo on 7777/7778 and HTTP on 8080/8081 in both families. `close()`
// (also run by deinit, and by init when it fails half-way) kills every process and deletes the
// namespaces, which takes the veth pairs with them, so nothing outlives a test, pass or fail.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SluiceProcess

final class GatewayTopology {
    let tag = getpid() % 200
    let client: String, gateway: String, upstream: String
    let clientV4: String, gatewayInV4: String, upstreamV4: String, gatewayOutV4: String
    let clientV6: String, upstreamV6: String
    let work: URL
    let logFile: URL
    var dataDirectory: String { work.appendingPathComponent("data").path }
    private(set) var sluice: RunningProcess?
    private var processes: [RunningProcess] = []
    private var closed = false

    /// Builds the topology, starts the upstream servers and `sluice run` with `policy` as its
    /// `--policy` file (none when nil), and waits until its API listens.
    init(policy: String?, extraArguments: [String] = []) throws {
        client = "slc-c\(tag)"
        gateway = "slc-g\(tag)"
        upstream = "slc-u\(tag)"
        clientV4 = "10.77.\(tag).2"
        gatewayInV4 = "10.77.\(tag).1"
        upstreamV4 = "10.79.\(tag).2"
        gatewayOutV4 = "10.79.\(tag).1"
        clientV6 = "fd77:\(tag)::2"
        upstreamV6 = "fd79:\(tag)::2"
        work = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-gw-\(getpid())")
        logFile = work.appendingPathComponent("sluice.log")
        do {
            try build()
            try startSluice(policy: policy, extraArguments: extraArguments)
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Kills every process and removes the namespaces and the work directory. Idempotent.
    func close() {
        guard !closed else { return }
        closed = true
        for process in processes where process.isRunning {
            process.kill(SIGKILL)
            process.wait()
        }
        for namespace in [client, gateway, upstream] { _ = try? Subprocess.check(["ip", "netns", "del", namespace]) }
        try? FileManager.default.removeItem(at: work)
    }

    private func build() throws {
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        for namespace in [client, gateway, upstream] {
            _ = try? Subprocess.check(["ip", "netns", "del", namespace])
            try Subprocess.check(["ip", "netns", "add", namespace])
            try Subprocess.check(["ip", "-n", namespace, "link", "set", "lo", "up"])
        }
        // Two veth pairs of two queues each; the gateway ends are moved into the gateway namespace.
        try Subprocess.check(["ip", "-n", client, "link", "add", "c0", "numtxqueues", "2", "numrxqueues", "2", "type",
                              "veth", "peer", "name", "gin", "numtxqueues", "2", "numrxqueues", "2", "netns", gateway])
        try Subprocess.check(["ip", "-n", upstream, "link", "add", "u0", "numtxqueues", "2", "numrxqueues", "2", "type",
                              "veth", "peer", "name", "gout", "numtxqueues", "2", "numrxqueues", "2", "netns", gateway])
        func configure(_ namespace: String, _ interface: String, _ v4: String, _ v6: String) throws {
            try Subprocess.check(["ip", "-n", namespace, "addr", "add", "\(v4)/24", "dev", interface])
            try Subprocess.check(["ip", "-n", namespace, "addr", "add", "\(v6)/64", "dev", interface, "nodad"])
            try Subprocess.check(["ip", "-n", namespace, "link", "set", interface, "up"])
            _ = try? Subprocess.check(["ip", "netns", "exec", namespace, "ethtool", "-K", interface, "gro", "on"])
            // veth hands checksum work on to the receiver (CHECKSUM_PARTIAL); AF_XDP sees the raw
            // bytes and forwards them as they are, so the hosts must finish their checksums.
            if interface == "c0" || interface == "u0" {
                try Subprocess.check(["ip", "netns", "exec", namespace, "ethtool", "-K", interface, "tx", "off"])
            }
        }
        try configure(client, "c0", clientV4, clientV6)
        try configure(gateway, "gin", gatewayInV4, "fd77:\(tag)::1")
        try configure(gateway, "gout", gatewayOutV4, "fd79:\(tag)::1")
        try configure(upstream, "u0", upstreamV4, upstreamV6)
        try Subprocess.check(["ip", "-n", client, "route", "add", "default", "via", gatewayInV4])
        try Subprocess.check(["ip", "-n", client, "-6", "route", "add", "default", "via", "fd77:\(tag)::1"])
        try Subprocess.check(["ip", "-n", upstream, "route", "add", "10.77.0.0/16", "via", gatewayOutV4])
        try Subprocess.check(["ip", "-n", upstream, "-6", "route", "add", "fd77::/16", "via", "fd79:\(tag)::1"])
        processes.append(try Subprocess.start(
            ["ip", "netns", "exec", upstream, "python3", "-c", GatewayTopology.upstreamServer]))
    }

    private func startSluice(policy: String?, extraArguments: [String]) throws {
        var arguments = ["ip", "netns", "exec", gateway, GatewayLab.sluiceExecutable!, "run",
                         "--data-dir", dataDirectory, "--api-listen", "127.0.0.1:0",
                         "--api-plaintext", "--dataplane", "xdp", "--inside", "gin", "--outside", "gout",
                         "--queues", "2", "--cores", "0,1", "--flow-table-size", "4096"]
        if let policy {
            let policyFile = work.appendingPathComponent("policy.json")
            try policy.write(to: policyFile, atomically: true, encoding: .utf8)
            arguments += ["--policy", policyFile.path]
        }
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let process = try Subprocess.start(
            arguments + extraArguments, stdout: .appendFile(logFile.path), stderr: .sameAsStdout)
        processes.append(process)
        sluice = process
        let deadline = Date().addingTimeInterval(30)
        while !log().contains("management API listening") && process.isRunning && Date() < deadline {
            usleep(100_000)
        }
        guard process.isRunning, log().contains("management API listening") else {
            throw ProcessError("sluice run did not start: \(log())")
        }
    }

    /// What `sluice run` logged so far.
    func log() -> String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// The API's base URL, from the log line that announces it.
    var apiURL: String {
        log().split(separator: "\n").first { $0.contains("management API listening on") }
            .map { String($0[$0.range(of: "http://")!.lowerBound...]) } ?? ""
    }

    /// A new admin token (`sluice token create` on the node).
    func adminToken() throws -> String {
        try Subprocess.check(["ip", "netns", "exec", gateway, GatewayLab.sluiceExecutable!, "token", "create",
                              "--data-dir", dataDirectory, "--role", "admin"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs `arguments` in the client namespace: (exited 0, output or the error).
    func inClient(_ arguments: [String]) -> (ok: Bool, output: String) {
        inNamespace(client, arguments)
    }

    /// Runs `arguments` in `namespace`: (exited 0, output or the error).
    func inNamespace(_ namespace: String, _ arguments: [String]) -> (ok: Bool, output: String) {
        do {
            return (true, try Subprocess.check(["ip", "netns", "exec", namespace] + arguments))
        } catch {
            return (false, "\(error)")
        }
    }

    /// Starts `arguments` in `namespace`, output captured, and keeps it until `close()`.
    func start(in namespace: String, _ arguments: [String], stdin: Subprocess.Input = .null) throws -> RunningProcess {
        let process = try Subprocess.start(["ip", "netns", "exec", namespace] + arguments, stdin: stdin)
        processes.append(process)
        return process
    }

    /// The first packets of a flow may wait for neighbour resolution (dropped, resolved,
    /// retried): allowed cases get a few attempts.
    func eventually(_ attempts: Int = 5, _ probe: () -> Bool) -> Bool {
        for _ in 0..<attempts where probe() { return true }
        return false
    }

    /// One UDP datagram to `host:port` from the client and the echo, or "timeout".
    func udpProbe(_ host: String, _ port: Int, sourcePort: Int = 0) -> String {
        inClient(["python3", "-c", GatewayTopology.udpProbe(host, port, sourcePort: sourcePort)]).output
    }

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
}
