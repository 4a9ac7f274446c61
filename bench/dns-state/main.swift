// dns-state-bench: the DNS proxy's own work per query, in process, on one thread, without sockets:
// parse, policy, cache, learning and the reply, driven through the same `prepare` / `complete` the UDP
// threads call, with upstream replies made here. dns-bench measures the proxy end to end against nsd and
// dnsperf, but on a 2-CPU machine its runs differ by ±10 %, which hides changes of a few hundred
// nanoseconds; this one repeats the same work with nothing else in the way, so such changes show, and
// `perf record` on it profiles the proxy's state alone.
//
//   swift build -c release --product dns-state-bench && .build/release/dns-state-bench [--runs 7] [--queries N] [--stalls]
//
// Mixes (each: warmed until the cache and the learned set are full, then timed over fresh names):
//   hits                   every name cached (the template path)
//   misses, cache off      every query forwarded, nothing stored
//   misses, cache on       every name new: the answer stored (one evicted), its address learned (one evicted);
//                          all names answer the same address, as the bench zone's wildcard does
//   misses, cache on, own  the same with a different address per name
// The baseline printed beside each figure is the cache-off miss of the same run.
import DNSBenchSupport
import Foundation
import NIOCore
import SluiceDNS
import SluicePolicy
import SluiceWire

struct Options {
    var runs = 7
    var queries = 200_000
    var only: String?
    /// `--stalls`: time each query and report the slowest.
    var stalls = false

    static func parse() -> Options {
        var options = Options()
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            switch argument {
            case "--runs": options.runs = max(1, Int(arguments.popFirst() ?? "") ?? options.runs)
            case "--queries": options.queries = max(1000, Int(arguments.popFirst() ?? "") ?? options.queries)
            case "--only": options.only = arguments.popFirst()
            case "--stalls": options.stalls = true
            default:
                FileHandle.standardError.write(Data(
                    "usage: dns-state-bench [--runs N] [--queries N] [--only hits|misses|cache-on|cache-on-own] [--stalls]\n".utf8))
                exit(2)
            }
        }
        return options
    }
}


/// One query and the upstream's answer to it, as bytes on the wire.
struct Exchange {
    let query: [UInt8]
    let reply: [UInt8]
}

/// The query for `qN.fresh.bench.test` (no EDNS, as dnsperf sends by default) and nsd's
/// answer: the question echoed, one A record. `ownAddress`: a different address per name.
func exchange(_ index: Int, ownAddress: Bool) -> Exchange {
    let name = try! DNSName("q\(index).fresh.bench.test")
    let query = DNSMessage.query(id: UInt16(truncatingIfNeeded: index), name: name, type: .a, edns: nil)
    let address = ownAddress ? 0x0A00_0000 | UInt32(truncatingIfNeeded: index) & 0x00FF_FFFF : 0x0AFE_0001
    let reply = query.response(answers: [DNSResourceRecord(name: name, type: .a, ttl: 3600, data: .a(address))])
    return Exchange(query: query.serialized(), reply: reply.serialized())
}

func makeProxy(cache: Bool) -> DNSProxy {
    var configuration = DNSProxyConfiguration(
        listen: [try! SocketAddress(ipAddress: "127.0.0.1", port: 53)],
        upstreams: [try! SocketAddress(ipAddress: "127.0.0.77", port: 53)])
    if !cache { configuration.cache.maxEntries = 0 }
    let proxy = DNSProxy(configuration: configuration)
    proxy.setPolicy(try! benchDNSPolicy())
    return proxy
}

let client = IPAddress.v4(0x7F00_0001)

/// One query through the proxy as a UDP thread handles it; returns the reply's length (kept, so the
/// work cannot be optimised away).
@inline(never)
func handle(_ proxy: DNSProxy, _ exchange: Exchange) -> Int {
    switch proxy.prepare(exchange.query, from: client, overTCP: false, upstreamID: 0) {
    case .reply(let bytes): return bytes.count
    case .drop: return 0
    case .forward(let request):
        guard let scan = DNSWireScan(exchange.reply) else { fatalError("the made-up reply does not scan") }
        return proxy.complete(request, upstream: .wire(exchange.reply, scan)).count
    }
}

/// Nanoseconds per query over `exchanges`, after they were made (making them is not timed).
func time(_ proxy: DNSProxy, _ exchanges: [Exchange]) -> Double {
    var sink = 0
    let start = DispatchTime.now().uptimeNanoseconds
    for exchange in exchanges { sink &+= handle(proxy, exchange) }
    let elapsed = DispatchTime.now().uptimeNanoseconds - start
    if sink == 0 { fatalError("no replies") }
    return Double(elapsed) / Double(exchanges.count)
}

/// Each query timed on its own (`--stalls`): the slowest ones are the pauses a client behind them waits
/// out, which the mean hides (a compaction under a lock, a walk over every entry).
func stalls(_ proxy: DNSProxy, _ exchanges: [Exchange]) -> [UInt64] {
    var times: [UInt64] = []
    times.reserveCapacity(exchanges.count)
    var sink = 0
    for exchange in exchanges {
        let start = DispatchTime.now().uptimeNanoseconds
        sink &+= handle(proxy, exchange)
        times.append(DispatchTime.now().uptimeNanoseconds - start)
    }
    if sink == 0 { fatalError("no replies") }
    return times
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

let options = Options.parse()

/// Runs one mix `options.runs` times; each run gets names never asked before (`next` moves on).
func measure(_ label: String, cache: Bool, hits: Bool, ownAddress: Bool) -> [Double] {
    let proxy = makeProxy(cache: cache)
    var next = 0
    func batch(_ count: Int) -> [Exchange] {
        defer { next += count }
        return (next..<next + count).map { exchange($0, ownAddress: ownAddress) }
    }
    // Fill the cache (10,000) and the learned set (65,536) so every timed miss also evicts.
    let warm = batch(80_000)
    _ = time(proxy, warm)
    var results: [Double] = []
    for _ in 0..<options.runs {
        let exchanges: [Exchange]
        if hits {
            // Names the cache holds: the last stored ones, asked again and again.
            let held = (next - 8_000..<next).map { exchange($0, ownAddress: ownAddress) }
            exchanges = (0..<options.queries).map { held[$0 % held.count] }
        } else {
            exchanges = batch(options.queries)
        }
        guard options.stalls else {
            results.append(time(proxy, exchanges))
            continue
        }
        let times = stalls(proxy, exchanges)
        let sorted = times.sorted()
        func at(_ quantile: Double) -> UInt64 { sorted[min(sorted.count - 1, Int(Double(sorted.count) * quantile))] }
        let slow = times.enumerated().filter { $0.element > 100_000 }
        let slowest = slow.sorted { $0.element > $1.element }.prefix(8)
        print("  \(label): p50 \(at(0.5)) ns, p99 \(at(0.99)) ns, p99.9 \(at(0.999)) ns, max \(sorted.last!) ns; "
            + "\(slow.count) over 100 µs, the slowest at queries \(slowest.map { "\($0.offset) (\($0.element / 1000) µs)" })")
        results.append(Double(times.reduce(0, +)) / Double(times.count))
    }
    let statistics = proxy.learned.statistics()
    FileHandle.standardError.write(Data(("  \(label): cache \(proxy.cache.count) held, \(proxy.cache.evicted) evicted; "
        + "learned \(statistics.entries) held, \(statistics.evicted) evicted\n").utf8))
    return results
}

let mixes: [(key: String, label: String, cache: Bool, hits: Bool, own: Bool)] = [
    ("misses", "misses, cache off", false, false, false),
    ("hits", "hits", true, true, false),
    ("cache-on", "misses, cache on (one address)", true, false, false),
    ("cache-on-own", "misses, cache on (own addresses)", true, false, true),
]

print("dns-state-bench: \(options.queries) queries per run, \(options.runs) runs, one thread, in process")
var baseline: Double?
for mix in mixes where options.only == nil || options.only == mix.key || mix.key == "misses" {
    let results = measure(mix.label, cache: mix.cache, hits: mix.hits, ownAddress: mix.own)
    let value = median(results)
    if mix.key == "misses" { baseline = value }
    if options.only != nil, options.only != mix.key { continue }
    let runs = results.map { String(format: "%.0f", $0) }.joined(separator: " ")
    let ratio = baseline.map { String(format: "%.2f× the cache-off miss", value / $0) } ?? ""
    print(mix.label.padding(toLength: 34, withPad: " ", startingAt: 0)
        + String(format: "%6.0f ns per query (median; runs %@)  %@", value, runs, ratio))
}
