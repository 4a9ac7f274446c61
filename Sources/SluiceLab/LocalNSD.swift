// nsd serving one zone on a loopback address and port from a scratch directory: the real upstream of
// the DNS proxy's integration tests (Tests/SluiceDNSTests) and of dns-bench, started and stopped the
// same way for both. Unlike the lab's nsd (LabServices.swift) it runs in the caller's namespace and
// daemonises itself; `stop` ends its whole process group and removes the directory.
import Foundation
import SluiceProcess

#if canImport(Glibc)
    import Glibc
#endif

/// A running nsd with one zone. Any thread may use it.
public struct LocalNSD: Sendable {
    /// nsd's path (Debian's package).
    public static let binary = "/usr/sbin/nsd"
    /// kdig's path (knot-dnsutils), used to see that nsd answers.
    public static let kdig = "/usr/bin/kdig"
    /// Whether nsd is installed.
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    /// The address it listens on (UDP and TCP).
    public let address: String
    /// The port it listens on.
    public let port: Int
    /// The zone's name, without the final dot.
    public let zone: String
    /// Its configuration, zone file, pid file and log; removed by `stop`.
    public let directory: URL

    /// Writes `zoneText` as zone `zone` and a configuration into `directory` (created), starts nsd on
    /// `address`:`port` and waits up to 5 s until it answers the zone's SOA; stops it and throws when
    /// it does not. `serverOptions` are extra lines of the `server:` clause (e.g. `rrl-ratelimit: 0`).
    public static func start(
        zone: String, zoneText: String, address: String, port: Int, directory: URL, serverOptions: [String] = []
    ) throws -> LocalNSD {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = LocalNSD(address: address, port: port, zone: zone, directory: directory)
        let dir = directory.path
        try zoneText.write(to: directory.appendingPathComponent("\(zone).zone"), atomically: true, encoding: .utf8)
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
            \(serverOptions.map { "    \($0)\n" }.joined())remote-control:
                control-enable: no
            zone:
                name: \(zone)
                zonefile: \(zone).zone

            """
        try conf.write(to: directory.appendingPathComponent("nsd.conf"), atomically: true, encoding: .utf8)
        // nsd daemonises: the parent exits once the daemon has forked. Output discarded: the daemon
        // could keep a pipe open for as long as it runs.
        _ = try? Subprocess.start(
            [binary, "-c", "\(dir)/nsd.conf", "-P", "\(dir)/nsd.pid"], stdout: .discard, stderr: .discard
        ).wait()
        for _ in 0..<50 {
            if server.answers() { return server }
            usleep(100_000)
        }
        let log = (try? String(contentsOfFile: "\(dir)/nsd.log", encoding: .utf8)) ?? ""
        server.stop()
        throw LabError("nsd did not come up on \(address):\(port): \(log)")
    }

    /// The daemon's pid (it leads its own process group), once it has written its pid file.
    public var pid: Int32? {
        let text = try? String(contentsOf: directory.appendingPathComponent("nsd.pid"), encoding: .utf8)
        return text.flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }.flatMap { $0 > 1 ? $0 : nil }
    }

    /// Whether nsd answers a query for the zone's SOA with NOERROR (checked with kdig).
    public func answers() -> Bool {
        let result = try? Subprocess.run(
            [Self.kdig, "@\(address)", "-p", "\(port)", "+retry=0", "+time=1", zone, "SOA"])
        return result?.stdout.contains("status: NOERROR") ?? false
    }

    /// Stops nsd (SIGTERM to its process group, so its server and xfrd children go too, then SIGKILL)
    /// and removes its directory. Safe to call twice.
    public func stop() {
        if let pid {
            kill(-pid, SIGTERM)
            usleep(200_000)
            kill(-pid, SIGKILL)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
