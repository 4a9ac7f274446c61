// A real upstream for the integration tests: nsd serving a small zone on a loopback address and a high
// port, in a temporary directory, stopped (and the directory removed) by `stop`, which the tests call in
// `defer` so a failing test does not leave it running. Tests that need it are skipped with the reason
// when nsd is not installed (scripts/setup.sh installs it).
import Foundation
import SluiceLab
import SluiceProcess
import Testing

struct NSDServer {
    static let binary = "/usr/sbin/nsd"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }
    static let skipReason: Comment = "nsd is not installed (run scripts/setup.sh): the real-upstream tests need it"

    /// The zone: the wire-format fixtures' zone plus a 1-second record for expiry tests.
    static let zone = """
    $ORIGIN sluice.test.
    $TTL 300
    @       IN SOA  ns1 hostmaster 2026112101 3600 600 86400 60
    @       IN NS   ns1
    ns1     IN A    127.0.0.77
    www     IN A    192.0.2.10
    www     IN A    192.0.2.11
    www     IN AAAA 2001:db8::10
    www     IN AAAA 2001:db8::11
    alias   120 IN CNAME www
    chain1  600 IN CNAME chain2
    chain2  90  IN CNAME chain3
    chain3  IN CNAME www
    api     60  IN A    198.51.100.7
    short   1   IN A    198.51.100.99
    big     IN TXT  "\(String(repeating: "a", count: 250))" "\(String(repeating: "b", count: 250))"
    big     IN TXT  "\(String(repeating: "c", count: 250))" "\(String(repeating: "d", count: 250))"
    big     IN TXT  "\(String(repeating: "e", count: 250))" "\(String(repeating: "f", count: 250))"

    """

    let address: String
    let port: Int
    let directory: URL

    /// Starts nsd on `address` and a free-looking high port; throws when it does not come up.
    static func start(address: String = "127.0.0.77") throws -> NSDServer {
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = Int.random(in: 30_000...60_000)
            do {
                return try start(address: address, port: port)
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    private static func start(address: String, port: Int) throws -> NSDServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-nsd-\(port)-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = NSDServer(address: address, port: port, directory: directory)
        let dir = directory.path
        try zone.write(to: directory.appendingPathComponent("sluice.test.zone"), atomically: true, encoding: .utf8)
        let conf = """
        server:
            ip-address: \(address)@\(port)
            username: ""
            chroot: ""
            zonesdir: "\(dir)"
            pidfile: "\(dir)/nsd.pid"
            zonelistfile: "\(dir)/zone.list"
            xfrdfile: "\(dir)/xfrd.state"
            xfrdir: "\(dir)"
            logfile: "\(dir)/nsd.log"
            database: ""
            server-count: 1
        remote-control:
            control-enable: no
        zone:
            name: sluice.test
            zonefile: sluice.test.zone

        """
        try conf.write(to: directory.appendingPathComponent("nsd.conf"), atomically: true, encoding: .utf8)
        // nsd daemonises: the parent exits once the daemon has forked.
        // Its output discarded: the daemon could keep a pipe open for as long as it runs.
        _ = try? Subprocess.start(
            [binary, "-c", "\(dir)/nsd.conf", "-P", "\(dir)/nsd.pid"], stdout: .discard, stderr: .discard
        ).wait()
        // Wait until it answers (up to 5 s).
        for _ in 0..<50 {
            if server.answers() { return server }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let log = (try? String(contentsOfFile: "\(dir)/nsd.log", encoding: .utf8)) ?? ""
        server.stop()
        throw NSDError(description: "nsd did not come up on \(address):\(port): \(log)")
    }

    struct NSDError: Error, CustomStringConvertible {
        var description: String
    }

    /// Whether nsd answers a query for the zone's SOA (checked with kdig).
    func answers() -> Bool {
        let output = (try? Subprocess.run(
            ["/usr/bin/kdig", "@\(address)", "-p", "\(port)", "+retry=0", "+time=1", "sluice.test", "SOA"]))?.stdout
        return output?.contains("status: NOERROR") ?? false
    }

    /// Stops nsd (the daemon leads its own process group: its server and xfrd children go with it) and
    /// removes its directory. Safe to call twice.
    func stop() {
        let pidFile = directory.appendingPathComponent("nsd.pid").path
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
           let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 {
            kill(-pid, SIGTERM)
            Thread.sleep(forTimeInterval: 0.2)
            kill(-pid, SIGKILL)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs kdig with `arguments` and returns its standard output (empty when it cannot run). On its own
/// thread: blocking a cooperative thread would starve the proxy's query tasks that kdig is waiting for.
func kdig(_ arguments: [String]) async -> String {
    await offPool { (try? Subprocess.run(["/usr/bin/kdig"] + arguments))?.stdout ?? "" }
}

/// Runs blocking work on a new thread and awaits its result.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}

