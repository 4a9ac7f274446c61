// dns-bench: queries per second and latency through the DNS proxy (policy evaluation, cache, upstream
// forwarding) against the same load sent straight to the upstream, in the same run (issue 5, "Performance").
//
//   dnsperf ──► nsd (127.0.0.77)                      direct: the baseline
//   dnsperf ──► DNSProxy (127.0.0.1, in this process) ──► nsd
//
// Mixes: cache-friendly (a few names, answered from the cache after the first query), cache-hostile
// (the proxy's cache switched off, so every query is judged and forwarded upstream) and cache-on-misses
// (the cache on, as deployed, and every name new: a wildcard in the zone answers `qN.fresh.bench.test`,
// each asked once, so every query is forwarded, stored and evicted again). Each mix is run at
// full load (dnsperf -q outstanding queries) and then at half the lower of the two measured rates for
// p99 latency (dnsperf -v reports every query's latency). The proxy runs ONE UDP thread, so its rate is what
// one core does. `--repeat N` runs everything N times and prints medians.
//
// Pinned mode (`--pin`, the default with two or more CPUs; `--no-pin` turns it off): dnsperf and nsd run
// on CPU 0 in BOTH the direct and the proxied runs, the proxy's UDP thread on CPU 1. That models a
// gateway: the proxy has the gateway's CPU, clients and the upstream resolver are other machines. The load
// side then has the same CPU in both runs, and the ratio says what the proxy costs, not how the scheduler
// split two shared cores between three programs (the unpinned, shared mode; docs/benchmarks.md).
// Needs root, nsd and dnsperf from Debian's packages (bench/dns/setup.sh installs them).
// Usage: swift run -c release dns-bench [--seconds 10] [--names 5000] [--repeat 3]
import DNSBenchSupport
import Foundation
import NIOCore
import NIOPosix
import SluiceDNS
import SluiceLab
import SluiceProcess

/// Writes a line at once (unbuffered), so progress shows when piped into a file.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The command line.
struct Options {
    var seconds = 10
    var names = 5000
    var repeats = 1
    /// One mix only: cache-friendly, cache-hostile or cache-on-misses.
    var only: String?
    var pin = ProcessInfo.processInfo.activeProcessorCount >= 2
    /// `--upstream-sockets N`: the pool's sockets per upstream (DNSProxyConfiguration.upstreamSocketsPerLoop).
    var upstreamSockets: Int?
    /// `--realtime` (with --pin): the proxy's UDP thread runs SCHED_FIFO (priority 1), so other programs on
    /// a shared machine that the scheduler moves onto the proxy's CPU cannot preempt it; it models a
    /// gateway whose DNS core runs nothing else. Latency figures with it are labelled as such.
    var realtime = false
    /// `--outstanding N`: dnsperf's queries in flight at full load (-q). Enough that the full-load runs are
    /// bound by CPU, not by round trips: at 100 a proxied run was partly latency-bound (its proxy idle 11 %).
    var outstanding = 100
    /// `--split-latency`: capture the proxied half-load run with tcpdump and split each query's latency
    /// into the proxy's share and the upstream leg (LatencySplit.swift).
    var splitLatency = false

    static func parse() -> Options {
        var options = Options()
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            switch argument {
            case "--seconds": options.seconds = Int(arguments.popFirst() ?? "") ?? options.seconds
            case "--names": options.names = Int(arguments.popFirst() ?? "") ?? options.names
            case "--repeat": options.repeats = max(1, Int(arguments.popFirst() ?? "") ?? options.repeats)
            case "--only": options.only = arguments.popFirst()
            case "--pin": options.pin = true
            case "--no-pin": options.pin = false
            case "--upstream-sockets": options.upstreamSockets = Int(arguments.popFirst() ?? "")
            case "--realtime": options.realtime = true
            case "--split-latency": options.splitLatency = true
            case "--outstanding": options.outstanding = Int(arguments.popFirst() ?? "") ?? options.outstanding
            default:
                say("usage: dns-bench [--seconds N] [--names N] [--repeat N] [--only cache-friendly|cache-hostile|cache-on-misses] "
                    + "[--pin|--no-pin] [--realtime] [--upstream-sockets N] [--split-latency] [--outstanding N]")
                exit(2)
            }
        }
        return options
    }
}

let options = Options.parse()
let (seconds, names, repeats, only, pin, upstreamSockets, realtime) = (
    options.seconds, options.names, options.repeats, options.only, options.pin, options.upstreamSockets,
    options.realtime)

if pin && ProcessInfo.processInfo.activeProcessorCount < 2 {
    say("dns-bench: --pin needs two CPUs")
    exit(2)
}

/// CPU the load side (dnsperf, nsd) runs on in pinned mode, and the CPU of the proxy's UDP thread.
let loadCPU = 0, proxyCPU = 1

/// glibc's sched_setaffinity, looked up at run time: Glibc's Swift module leaves it out (it is declared
/// only under _GNU_SOURCE).
typealias SchedSetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
let schedSetAffinity: SchedSetAffinity? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity")
    .map { unsafeBitCast($0, to: SchedSetAffinity.self) }

/// Binds thread or process `tid` (0: the calling thread) to `cpu` (the mask written as cpu_set_t's bytes).
@discardableResult
func pinThread(_ tid: pid_t, to cpu: Int) -> Bool {
    guard let schedSetAffinity else { return false }
    var mask = [UInt8](repeating: 0, count: 128)  // sizeof(cpu_set_t)
    mask[cpu / 8] |= UInt8(1 << (cpu % 8))
    return mask.withUnsafeBytes { raw in schedSetAffinity(tid, raw.count, raw.baseAddress!) == 0 }
}

/// Pins every thread of every process in process group `leader` (nsd: main, xfrd, server) to `cpu`.
func pinProcessGroup(_ leader: pid_t, to cpu: Int) -> Int {
    var pinned = 0
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), getpgid(pid) == leader else { continue }
        for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            if let tid = Int32(task), pinThread(tid, to: cpu) { pinned += 1 }
        }
    }
    return pinned
}

// Pinned: this process's own threads (reading dnsperf's output, which is load-side work) start on the
// load CPU too, and threads made later inherit it; only the proxy's UDP thread moves to `proxyCPU`.
if pin {
    for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
        if let tid = Int32(task) { pinThread(tid, to: loadCPU) }
    }
}

for tool in ["/usr/sbin/nsd", "/usr/bin/dnsperf"] where !FileManager.default.isExecutableFile(atPath: tool) {
    say("dns-bench: \(tool) is missing; run bench/dns/setup.sh")
    exit(1)
}

// MARK: - nsd with a zone of `names` hosts

let work = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-dns-bench-\(getpid())")
try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
let nsdPort = Int.random(in: 30_000...60_000)
var zone = "$ORIGIN bench.test.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n"
zone += "@ IN NS ns1\nns1 IN A 127.0.0.77\n*.fresh IN A 10.254.0.1\n"
for index in 0..<names {
    zone += "h\(index) IN A 10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)\n"
}
let nsd: LocalNSD
do {
    // Waits until nsd answers, so the first run does not measure its start.
    nsd = try LocalNSD.start(
        zone: "bench.test", zoneText: zone, address: "127.0.0.77", port: nsdPort,
        directory: work.appendingPathComponent("nsd"), serverOptions: ["rrl-ratelimit: 0"])
} catch {
    say("dns-bench: \(error)")
    exit(1)
}

if pin {
    guard let leader = nsd.pid, pinProcessGroup(leader, to: loadCPU) > 0 else {
        say("dns-bench: could not pin nsd to CPU \(loadCPU)")
        nsd.stop()
        exit(1)
    }
}

func stopNSD() {
    nsd.stop()
    try? FileManager.default.removeItem(at: work)
}

signal(SIGINT) { _ in
    stopNSD()
    exit(130)
}

// MARK: - the proxy

/// A running proxy and the kernel's id of its one UDP thread.
struct RunningProxy {
    let server: DNSProxyServer
    let thread: pid_t
}

/// `learnedEntries`: the learned set's bound (the cache-on-misses mix uses the product's default).
func startProxy(cache: Bool, learnedEntries: Int = max(names * 2, 1024)) async throws -> RunningProxy {
    var configuration = DNSProxyConfiguration(
        listen: [try SocketAddress(ipAddress: "127.0.0.1", port: 0)],
        upstreams: [try SocketAddress(ipAddress: "127.0.0.77", port: nsdPort)])
    if !cache { configuration.cache.maxEntries = 0 }
    if let upstreamSockets { configuration.upstreamSocketsPerLoop = upstreamSockets }
    // One thread: the proxy's whole UDP path (listener, judging, cache, upstream pool) runs on it.
    configuration.udpThreads = 1
    configuration.learned.maxEntries = learnedEntries
    let proxy = DNSProxy(configuration: configuration)
    proxy.setPolicy(try benchDNSPolicy())
    let server = try await DNSProxyServer.start(proxy: proxy)
    var thread: pid_t? = nil
    for _ in 0..<100 where thread == nil {
        thread = udpThread()
        if thread == nil { try await Task.sleep(for: .milliseconds(10)) }
    }
    guard let thread else {
        await server.close()
        throw BenchError("the proxy's UDP thread (sluice-dns0) did not show up in /proc/self/task")
    }
    if pin {
        var parameters = sched_param(sched_priority: 1)
        guard pinThread(thread, to: proxyCPU), !realtime || sched_setscheduler(thread, SCHED_FIFO, &parameters) == 0
        else {
            await server.close()
            throw BenchError("could not pin the proxy's UDP thread to CPU \(proxyCPU)\(realtime ? " (SCHED_FIFO)" : "")")
        }
    }
    return RunningProxy(server: server, thread: thread)
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The kernel id of the live thread named `sluice-dns0` (one server runs at a time).
func udpThread() -> pid_t? {
    for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
        if let name = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
           name.trimmingCharacters(in: .whitespacesAndNewlines) == "sluice-dns0" {
            return pid_t(task)
        }
    }
    return nil
}

/// CPU seconds (user + system) of this bench's nsd: every process in the daemon's process group (main,
/// xfrd, the server), from /proc (clock ticks, so 10 ms resolution: fine over runs of seconds).
func nsdCPUSeconds() -> Double {
    guard let leader = nsd.pid,
          let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
    var ticks = 0.0
    for entry in entries {
        guard Int32(entry) != nil, let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        // Fields after the command: state ppid pgrp session ... utime(14) stime(15), counted from pid(1).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, Int32(fields[2]) == leader else { continue }
        ticks += (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
    }
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds (user + system) the proxy's UDP thread has used so far (schedstat: nanoseconds on CPU).
/// Throughput on this 2-core machine is bounded by dnsperf and nsd; CPU per query of the UDP thread says
/// what one core running only the proxy would sustain.
func proxyThreadCPUSeconds(_ thread: pid_t) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/task/\(thread)/schedstat", encoding: .utf8),
          let first = text.split(separator: " ").first, let nanoseconds = Double(first) else { return 0 }
    return nanoseconds / 1e9
}

/// User and system CPU seconds of the proxy's UDP thread so far (/proc/self/task/TID/stat, in clock
/// ticks: coarse, but over seconds of load it shows how a query's cost splits between the proxy's code
/// and the kernel's UDP work).
func proxyThreadUserSystemSeconds(_ thread: pid_t) -> (user: Double, system: Double) {
    guard let stat = try? String(contentsOfFile: "/proc/self/task/\(thread)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return (0, 0) }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13 else { return (0, 0) }
    let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
    return ((Double(fields[11]) ?? 0) / tick, (Double(fields[12]) ?? 0) / tick)
}

// MARK: - dnsperf

struct Result {
    var qps: Double
    var p50: Double?
    var p99: Double?
    var lost: String
    /// CPU seconds (user + system) dnsperf itself used: the load generator shares the two cores with nsd
    /// and the proxy, so its cost per query bounds what ratio a CPU-bound run can show (see the summary).
    var cpu: Double
}

/// CPU seconds (user + system) of all waited-for children so far (dnsperf runs are waited for).
func childrenCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func dnsperf(port: Int, server: String, file: String, outstanding: Int = options.outstanding, rate: Double? = nil)
    -> Result {
    var arguments = ["-s", server, "-p", "\(port)", "-d", file, "-l", "\(seconds)", "-q", "\(outstanding)",
                     "-c", "4", "-t", "2"]
    if let rate { arguments += ["-Q", "\(Int(rate))", "-v"] }
    let cpuBefore = childrenCPUSeconds()
    let command = (pin ? ["/usr/bin/taskset", "-c", "\(loadCPU)"] : []) + ["/usr/bin/dnsperf"] + arguments
    // Output into a file, read afterwards: with -v dnsperf prints a line per query (tens of thousands a
    // second), and reading a pipe while it runs would put this process's reader on the measured cores.
    let outputFile = work.appendingPathComponent("dnsperf.out").path
    _ = try? Subprocess.run(["/bin/sh", "-c", "exec " + command.joined(separator: " ") + " > " + outputFile])
    let output = (try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? ""
    let cpu = childrenCPUSeconds() - cpuBefore
    func field(_ label: String) -> String? {
        output.split(separator: "\n").first { $0.contains(label) }.map {
            $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces)
        }
    }
    let qps = Double(field("Queries per second")?.split(separator: " ").first ?? "") ?? 0
    let lost = field("Queries lost") ?? "?"
    var latencies: [Double] = []
    if rate != nil {
        // -v lines: "> NOERROR h12.bench.test A 0.000123"
        for line in output.split(separator: "\n") where line.hasPrefix(">") {
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { latencies.append(value) }
        }
        latencies.sort()
    }
    func quantile(_ q: Double) -> Double? {
        latencies.isEmpty ? nil : latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))]
    }
    return Result(qps: qps, p50: quantile(0.5), p99: quantile(0.99), lost: lost, cpu: cpu)
}

/// tcpdump on loopback for the proxied half-load run (on the proxy's CPU when pinned: its work there
/// is reading the capture buffer; the copy of each packet happens in the sender's context anyway).
func startCapture(ports: [Int]) -> (process: RunningProcess, file: String)? {
    let file = work.appendingPathComponent("half-load.pcap").path
    let filter = "udp and (" + ports.map { "port \($0)" }.joined(separator: " or ") + ")"
    let command = (pin ? ["/usr/bin/taskset", "-c", "\(proxyCPU)"] : [])
        + ["/usr/bin/tcpdump", "-i", "lo", "-n", "-B", "262144", "-s", "160", "-w", file, filter]
    guard let process = try? Subprocess.start(command) else {
        say("dns-bench: tcpdump did not start (bench/dns/setup.sh installs it); no latency split")
        return nil
    }
    usleep(500_000)  // tcpdump attaches its filter before dnsperf starts
    return (process, file)
}

func stopCapture(_ capture: (process: RunningProcess, file: String), proxyPort: Int) -> LatencySplit? {
    capture.process.kill(SIGINT)
    let result = capture.process.wait(timeout: 10)
    if let dropped = result.stderr.split(separator: "\n").first(where: { $0.contains("dropped by kernel") }),
       !dropped.hasPrefix("0 ") {
        say("dns-bench: tcpdump: \(dropped)")
    }
    defer { try? FileManager.default.removeItem(atPath: capture.file) }
    return splitLatency(capture: capture.file, proxyPort: proxyPort, upstreamPort: nsdPort)
}

func describe(_ split: LatencySplit?) -> String {
    guard let split else { return "" }
    func pair(_ value: (p50: Double, p99: Double)) -> String { "p50 \(ms(value.p50)), p99 \(ms(value.p99))" }
    return """

      on the wire (tcpdump, \(split.matched) queries matched): proxy's share \(pair(split.proxy)); \
    upstream leg \(pair(split.upstream)); client to client \(pair(split.total))
    """
}

let friendly = work.appendingPathComponent("friendly.txt").path
try (0..<10).map { "h\($0).bench.test A\n" }.joined().write(toFile: friendly, atomically: true, encoding: .utf8)
let hostile = work.appendingPathComponent("hostile.txt").path
try (0..<names).shuffled().map { "h\($0).bench.test A\n" }.joined()
    .write(toFile: hostile, atomically: true, encoding: .utf8)
// Never-repeated names: more than a full-load run asks (~150k q/s), and a separate range for the half-load
// run, which follows on the same proxy and would otherwise find the full-load run's answers cached.
let fresh = work.appendingPathComponent("fresh.txt").path, freshHalf = work.appendingPathComponent("fresh-half.txt").path
for (path, range) in [(fresh, 0..<(seconds * 150_000)), (freshHalf, (seconds * 150_000)..<(seconds * 230_000))] {
    var text = ""
    text.reserveCapacity(range.count * 28)
    for index in range { text += "q\(index).fresh.bench.test A\n" }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

func ms(_ value: Double?) -> String { value.map { String(format: "%.3f ms", $0 * 1000) } ?? "n/a" }
/// A histogram bucket's bound as text (nil: above the last bound, or no observations).
func bucket(_ microseconds: UInt64?) -> String { microseconds.map { "\($0) µs" } ?? "n/a" }

say("dns-bench: \(seconds) s per run, \(names) names, nsd on 127.0.0.77:\(nsdPort), "
    + "\(ProcessInfo.processInfo.activeProcessorCount) CPUs, "
    + (pin ? "pinned: dnsperf and nsd on CPU \(loadCPU) in both runs, the proxy's UDP thread on CPU \(proxyCPU)"
        + (realtime ? " (SCHED_FIFO)" : "")
           : "shared: dnsperf, nsd and the proxy float over all CPUs"))
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

do {
    let mixes = [("cache-friendly", friendly, friendly, true), ("cache-hostile", hostile, hostile, false),
                 ("cache-on-misses", fresh, freshHalf, true)]
    for (mix, file, halfFile, cache) in mixes where only == nil || only == mix {
        var rows: [(direct: Double, proxied: Double, directP99: Double, proxiedP99: Double, oneCore: Double,
                    nsdOneCore: Double, bound: Double)] = []
        for round in 1...repeats {
            let running = mix == "cache-on-misses"
                ? try await startProxy(cache: true, learnedEntries: LearnedAddressConfiguration().maxEntries)
                : try await startProxy(cache: cache)
            let server = running.server
            let port = server.boundAddresses[0].port!
            let nsdBefore = nsdCPUSeconds()
            let direct = dnsperf(port: nsdPort, server: "127.0.0.77", file: file)
            let nsdCPU = nsdCPUSeconds() - nsdBefore
            let nsdOneCore = nsdCPU > 0 ? direct.qps * Double(seconds) / nsdCPU : 0
            let cpuBefore = proxyThreadCPUSeconds(running.thread)
            let splitBefore = proxyThreadUserSystemSeconds(running.thread)
            let answeredBefore = server.proxy.counters.value(.queries)
            let proxied = dnsperf(port: port, server: "127.0.0.1", file: file)
            let cpu = proxyThreadCPUSeconds(running.thread) - cpuBefore
            let splitAfter = proxyThreadUserSystemSeconds(running.thread)
            let (userShare, systemShare) = (splitAfter.user - splitBefore.user, splitAfter.system - splitBefore.system)
            let answered = Double(server.proxy.counters.value(.queries) - answeredBefore)
            let oneCore = cpu > 0 ? answered / cpu : 0
            // Half of the lower of the two sustainable rates: pinned, a cache hit through the proxy can
            // outrun nsd sharing its core with dnsperf, and half the proxy's rate would then overload
            // the direct run and compare an overloaded nsd's p99 with the proxy's.
            let half = min(proxied.qps, direct.qps) / 2
            let directHalf = dnsperf(port: nsdPort, server: "127.0.0.77", file: halfFile, rate: half)
            let legBefore = server.proxy.counters.upstreamLatency()
            let capture = options.splitLatency ? startCapture(ports: [port, nsdPort]) : nil
            let proxiedHalf = dnsperf(port: port, server: "127.0.0.1", file: halfFile, rate: half)
            let split = capture.flatMap { stopCapture($0, proxyPort: port) }
            let leg = server.proxy.counters.upstreamLatency().since(legBefore)
            let counters = server.proxy.counters.snapshot()
            await server.close()
            // CPU per query of each program (µs) and what they imply when the two cores are the limit:
            // direct costs dnsperf + nsd per query, proxied dnsperf + proxy + nsd.
            let perfUs = direct.qps > 0 ? direct.cpu / (direct.qps * Double(seconds)) * 1e6 : 0
            let nsdUs = nsdOneCore > 0 ? 1e6 / nsdOneCore : 0
            let proxyUs = oneCore > 0 ? 1e6 / oneCore : 0
            // Shared: all three programs split the cores. Pinned: the load side keeps its core in both runs,
            // so the proxied rate is capped only by the proxy's own core: min(1, (dnsperf + nsd) / proxy).
            let bound: Double
            if pin {
                bound = proxyUs > 0 ? min(1, (perfUs + nsdUs) / proxyUs) : 0
            } else {
                bound = perfUs + nsdUs + proxyUs > 0 ? (perfUs + nsdUs) / (perfUs + nsdUs + proxyUs) : 0
            }
            rows.append((direct.qps, proxied.qps, directHalf.p99 ?? 0, proxiedHalf.p99 ?? 0, oneCore, nsdOneCore,
                         bound))
            say("""
            \(mix) (proxy cache \(cache ? "on" : "off")), round \(round)/\(repeats):
              direct to nsd:  \(String(format: "%10.0f", direct.qps)) q/s  lost \(direct.lost)
              through proxy:  \(String(format: "%10.0f", proxied.qps)) q/s  lost \(proxied.lost)
              ratio proxy/direct: \(String(format: "%.2f", direct.qps > 0 ? proxied.qps / direct.qps : 0))
              proxy UDP thread: \(String(format: "%.2f", cpu)) CPU s for \(Int(answered)) queries = \
            \(String(format: "%.1f", answered > 0 ? cpu / answered * 1e6 : 0)) µs/query, \
            \(String(format: "%.0f", oneCore)) q/s per core (user \(String(format: "%.1f", answered > 0 ? userShare / answered * 1e6 : 0)) \
            µs, kernel \(String(format: "%.1f", answered > 0 ? systemShare / answered * 1e6 : 0)) µs); nsd: \
            \(String(format: "%.2f", nsdCPU)) CPU s in the direct run = \(String(format: "%.0f", nsdOneCore)) q/s per core
              CPU per query: dnsperf \(String(format: "%.1f", perfUs)) µs, nsd \(String(format: "%.1f", nsdUs)) µs, \
            proxy \(String(format: "%.1f", proxyUs)) µs; ratio if CPU-bound (\(pin ? "pinned" : "shared cores")): \
            \(String(format: "%.2f", bound))
              at \(Int(half)) q/s: p50 direct \(ms(directHalf.p50)), proxy \(ms(proxiedHalf.p50)); \
            p99 direct \(ms(directHalf.p99)), proxy \(ms(proxiedHalf.p99)), added \
            \(ms(proxiedHalf.p99.flatMap { p in directHalf.p99.map { p - $0 } }))
              upstream leg at half load (proxy → nsd → proxy, \(leg.count) exchanges): p50 ≤ \
            \(bucket(leg.bound(forQuantile: 0.5))), p99 ≤ \(bucket(leg.bound(forQuantile: 0.99)))\(describe(split))
              proxy counters: hits \(counters["cache_hits"] ?? 0), misses \(counters["cache_misses"] ?? 0), \
            servfail \(counters["servfail"] ?? 0), upstream timeouts \(counters["upstream_timeouts"] ?? 0), \
            mismatched \(counters["upstream_mismatched"] ?? 0)
            """)
        }
        let direct = median(rows.map(\.direct)), proxied = median(rows.map(\.proxied))
        let directP99 = median(rows.map(\.directP99)), proxiedP99 = median(rows.map(\.proxiedP99))
        let oneCore = median(rows.map(\.oneCore)), nsdOneCore = median(rows.map(\.nsdOneCore))
        let bound = median(rows.map(\.bound))
        say("""
        MEDIAN \(mix) over \(repeats): direct \(String(format: "%.0f", direct)) q/s, proxy \(String(format: "%.0f", proxied)) \
        q/s, ratio \(String(format: "%.2f", direct > 0 ? proxied / direct : 0)); p99 at half load direct \(ms(directP99)), \
        proxy \(ms(proxiedP99)), added \(ms(proxiedP99 - directP99)); per core (CPU time): \
        proxy \(String(format: "%.0f", oneCore)) q/s, nsd \(String(format: "%.0f", nsdOneCore)) q/s, ratio \
        \(String(format: "%.2f", nsdOneCore > 0 ? oneCore / nsdOneCore : 0)); ratio if CPU-bound \
        \(String(format: "%.2f", bound))
        """)
    }
} catch {
    say("dns-bench: \(error)")
}
stopNSD()
