// A real upstream for the integration tests: nsd (SluiceLab's LocalNSD) serving a small zone on a
// loopback address and a high port, in a temporary directory, stopped (and the directory removed) by
// `stop`, which the tests call in `defer` so a failing test does not leave it running. Tests that
// need it are skipped with the reason when nsd is not installed (scripts/setup.sh installs it).
import Foundation
import SluiceLab
import SluiceProcess
import Testing

/// The tests' nsd: SluiceLab's, with the zone below.
typealias NSDServer = LocalNSD

extension LocalNSD {
    static let skipReason: Comment = "nsd is not installed (run scripts/setup.sh): the real-upstream tests need it"

    /// The zone: the wire-format fixtures' zone plus a 1-second record for expiry tests.
    static let testZone = """
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

    /// Starts nsd (LocalNSD) on `address` and a free-looking high port; throws when it does not come up.
    static func start(address: String = "127.0.0.77") throws -> LocalNSD {
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = Int.random(in: 30_000...60_000)
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("sluice-nsd-\(port)-\(UUID())")
            do {
                return try LocalNSD.start(
                    zone: "sluice.test", zoneText: testZone, address: address, port: port, directory: directory)
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }
}

/// Runs kdig with `arguments` and returns its standard output (empty when it cannot run). On its own
/// thread: blocking a cooperative thread would starve the proxy's query tasks that kdig is waiting for.
func kdig(_ arguments: [String]) async -> String {
    await offPool { (try? Subprocess.run([LocalNSD.kdig] + arguments))?.stdout ?? "" }
}

/// Runs blocking work on a new thread and awaits its result.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}

