// TLS metadata matching cost, in process (no kernel, no rings): a PacketProcessor with its TLS
// inspector runs whole connections built in memory, TLS flows to port 443 under a `tls.sni`
// rule and plain TCP flows to port 80 under an ordinary allow rule, interleaved in the same run.
// Prints per connection kind the nanoseconds per connection (SYN, SYN+ACK, first client data,
// one more client packet) and connections per second on one thread, and for TLS the cost of the
// decision packet itself (the ClientHello: reassembly, parse, SNI match, flow update) against
// the first data packet of a plain flow. Medians of `--runs` runs. Run:
//   swift run -c release tls-bench [--flows 20000] [--runs 5] [--regex]
import Foundation
import SluiceDataplane
import SluicePacket
import SluicePolicy

func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let arguments = CommandLine.arguments
let flowCount = arguments.firstIndex(of: "--flows").flatMap { Int(arguments[$0 + 1]) } ?? 20_000
let runs = arguments.firstIndex(of: "--runs").flatMap { Int(arguments[$0 + 1]) } ?? 5
let regex = arguments.contains("--regex")

let sni = regex ? #"".*\\.bench\\.example""# : #"["api.bench.example", "www.bench.example"]"#
let policyText = """
{"mode": "enforce", "policy": {"default_policy": "deny", "source_groups": [
  {"id": "clients", "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
    {"id": "tls", "action": "allow", "match": {"proto": "tcp", "dst_ports": [443], "tls": {"sni": \(sni)}}},
    {"id": "web", "action": "allow", "match": {"proto": "tcp", "dst_ports": [80]}}
  ]}]}}
"""
let compiled = PolicyCompiler.compile(try PolicyParser.parseRequest(jsonBytes: Array(policyText.utf8)).value)

let insideMAC = MACAddress(0x02_00_00_00_01_01), outsideMAC = MACAddress(0x02_00_00_00_02_01)
let routerMAC = MACAddress(0x02_00_00_00_02_FE), clientMAC = MACAddress(0x02_00_00_00_01_02)
let router4: UInt128 = 0xC000_02FE
let snapshot = ForwardingSnapshot(
    inside: .init(index: 1, mac: insideMAC, ipv4: 0x0A00_0001),
    outside: .init(index: 2, mac: outsideMAC, ipv4: 0xC000_0201),
    routes: [.init(family: .v4, prefix: 0x0A00_0000, prefixLength: 8, gateway: nil, interfaceIndex: 1),
             .init(family: .v4, prefix: 0, prefixLength: 0, gateway: router4, interfaceIndex: 2)],
    neighbours: [.init(interfaceIndex: 2, family: .v4, address: router4, mac: routerMAC)]
        + (2..<12).map { .init(interfaceIndex: 1, family: .v4, address: 0x0A00_0000 | UInt128($0), mac: clientMAC) })

/// A ClientHello record with SNI and a 1,200-byte dummy key share (post-quantum sized).
func clientHello(_ name: String) -> [UInt8] {
    func vector(_ prefix: Int, _ bytes: [UInt8]) -> [UInt8] {
        let n = bytes.count
        let length: [UInt8] = prefix == 1 ? [UInt8(n)] : prefix == 2 ? [UInt8(n >> 8), UInt8(n & 0xFF)]
            : [UInt8(n >> 16), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
        return length + bytes
    }
    func ext(_ type: UInt16, _ data: [UInt8]) -> [UInt8] { [UInt8(type >> 8), UInt8(type & 0xFF)] + vector(2, data) }
    let extensions = ext(0, vector(2, [0] + vector(2, Array(name.utf8)))) + ext(43, vector(1, [3, 4, 3, 3]))
        + ext(51, vector(2, [0x11, 0xEC] + vector(2, [UInt8](repeating: 7, count: 1200))))
    let body: [UInt8] = [3, 3] + [UInt8](repeating: 0xAB, count: 32) + vector(1, []) + vector(2, [0x13, 0x01])
        + vector(1, [0]) + vector(2, extensions)
    let message = [1] + vector(3, body)
    return [22, 3, 1] + vector(2, message)
}

/// The four frames of one connection: SYN, SYN+ACK, first client data, next client data.
func connection(index: Int, tls: Bool) -> [(bytes: [UInt8], side: Side)] {
    let client: UInt128 = 0x0A00_0000 | UInt128(2 + index / 50_000)
    let tuple = FiveTuple(family: .v4, protocolNumber: IPProtocolNumber.tcp, source: client,
                          destination: 0xC633_6407, sourcePort: UInt16(10_000 + index % 50_000),
                          destinationPort: tls ? 443 : 80)
    var syn = FrameBuilder(destinationMAC: insideMAC, sourceMAC: clientMAC, tuple: tuple, tcpFlags: .syn)
    syn.sequenceNumber = 1000
    var synAck = FrameBuilder(destinationMAC: outsideMAC, sourceMAC: routerMAC, tuple: tuple.reversed(),
                              tcpFlags: [.syn, .ack])
    synAck.sequenceNumber = 5000
    var first = syn
    first.tcpFlags = [.ack, .psh]
    first.sequenceNumber = 1001
    let payload = tls ? clientHello(index % 2 == 0 ? "api.bench.example" : "www.bench.example")
        : Array("GET / HTTP/1.1\r\nHost: web\r\n\r\n".utf8)
    var next = first
    next.sequenceNumber = 1001 &+ UInt32(payload.count)
    return [(syn.bytes(), .inside), (synAck.bytes(), .outside), (first.bytes(payload: payload), .inside),
            (next.bytes(payload: [23, 3, 3, 0, 1, 0]), .inside)]
}

struct RunResult { var perConnection: [Bool: Double] = [:]; var firstData: [Bool: Double] = [:] }

func run() -> RunResult {
    let flows = FlowTable(FlowTableConfiguration(capacity: 4 * flowCount, shardCount: 64))
    var configuration = TLSInspectorConfiguration()
    configuration.maxPendingFlows = 64
    let inspector = TLSInspector(configuration)
    let events = SPSCRing<DataplaneEvent>(capacity: 1024)
    let neighbours = SPSCRing<NeighbourRequest>(capacity: 16)
    let counters = PendingCounters()
    defer { counters.deallocate() }
    let processor = PacketProcessor(flows: flows.handle, learned: NoLearnedAddresses(), counters: counters,
                                    events: events.producer, neighbourRequests: neighbours.producer, worker: 0,
                                    tls: inspector)
    let frame = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)
    defer { frame.deallocate() }
    let connections = (0..<flowCount).map { connection(index: $0, tls: $0 % 2 == 0) }
    var total: [Bool: UInt64] = [true: 0, false: 0]
    var firstData: [Bool: UInt64] = [true: 0, false: 0]
    let policy = (UInt64(1), Optional(Unmanaged.passUnretained(compiled)))
    let forwarding = Optional(Unmanaged.passUnretained(snapshot))
    var forwarded = 0
    let clock = ContinuousClock()
    for (index, packets) in connections.enumerated() {
        let tls = index % 2 == 0
        for (position, packet) in packets.enumerated() {
            packet.bytes.withUnsafeBytes { frame.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            let start = clock.now
            let decision = processor.process(frame: frame, length: packet.bytes.count, side: packet.side,
                                             now: 1_000_000, policy: policy, forwarding: forwarding)
            let elapsed = clock.now - start
            let ns = UInt64(elapsed.components.attoseconds / 1_000_000_000)
                + UInt64(elapsed.components.seconds) * 1_000_000_000
            total[tls]! += ns
            if position == 2 { firstData[tls]! += ns }
            if case .forward = decision.action { forwarded += 1 }
        }
    }
    precondition(forwarded == 4 * flowCount, "a packet was dropped: \(forwarded) of \(4 * flowCount) forwarded")
    precondition(counters.slots[DataplaneCounter.tlsAllowed.rawValue] == UInt64((flowCount + 1) / 2))
    let half = Double(flowCount / 2)
    return RunResult(perConnection: [true: Double(total[true]!) / half, false: Double(total[false]!) / half],
                     firstData: [true: Double(firstData[true]!) / half, false: Double(firstData[false]!) / half])
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

_ = run()  // warm up
var results: [RunResult] = []
for _ in 0..<runs { results.append(run()) }
say("tls-bench: \(flowCount) connections per run (half TLS with SNI \(regex ? "regex" : "exact list"), half plain TCP), "
    + "\(runs) runs, medians; 4 packets per connection, one thread, processor only")
for tls in [true, false] {
    let perConnection = median(results.map { $0.perConnection[tls]! })
    let decision = median(results.map { $0.firstData[tls]! })
    say(String(format: "  %@: %.0f ns per connection (%.0f connections/s), first client data packet %.0f ns%@",
               tls ? "TLS  " : "plain", perConnection, 1e9 / perConnection, decision,
               tls ? " (= the pending-TLS decision)" : ""))
}
