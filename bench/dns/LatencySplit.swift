// `--split-latency`: where the time of a proxied query goes, from a loopback capture of the half-load run.
// On this 2-CPU machine the upstream (nsd) shares its CPU with the load generator, so the end-to-end
// p99 through the proxy includes nsd's scheduling delays, which the direct run does not see in the same
// way (there dnsperf wakes nsd on its own CPU). The capture times every datagram where it is sent, so
// each query splits into:
//
//   client query ─(proxy: wake-up, judging, batching)─► upstream query ─(upstream leg: nsd)─►
//   upstream reply ─(proxy: wake-up, learning, batching)─► client reply
//
// The proxy's share is the two bracketed proxy spans added; the upstream leg is what the proxy waited for.
// Client and upstream legs are matched by question name (the proxy replaces the id upstream): the
// hostile mix asks each of its names once per pass, so a name's next upstream query after a client's
// query is that query's.
import Foundation

/// Percentiles of the three spans, in seconds, and how many queries were matched end to end.
struct LatencySplit {
    var matched: Int
    var proxy: (p50: Double, p99: Double)
    var upstream: (p50: Double, p99: Double)
    var total: (p50: Double, p99: Double)
}

/// One DNS datagram of the capture.
private struct CapturedDatagram {
    var time: Double
    var sourcePort: UInt16
    var destinationPort: UInt16
    var id: UInt16
    var isResponse: Bool
    var name: String
}

/// Reads a classic pcap file (`tcpdump -w` on `lo`: Ethernet link type, IPv4, UDP) into DNS datagrams;
/// anything else is skipped.
private func readCapture(_ path: String) -> [CapturedDatagram] {
    guard let data = FileManager.default.contents(atPath: path), data.count >= 24 else { return [] }
    let bytes = [UInt8](data)
    func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
    func u32le(_ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
    let magic = u32le(0)
    let nanoseconds = magic == 0xa1b2_3c4d
    guard magic == 0xa1b2_c3d4 || nanoseconds, u32le(20) == 1 else { return [] }  // little-endian, Ethernet
    var datagrams: [CapturedDatagram] = []
    var offset = 24
    while offset + 16 <= bytes.count {
        let seconds = Double(u32le(offset)), fraction = Double(u32le(offset + 4))
        let length = Int(u32le(offset + 8))
        let packet = offset + 16
        offset = packet + length
        guard offset <= bytes.count, length >= 14 + 20 + 8 + 12, u16(packet + 12) == 0x0800 else { continue }
        let ip = packet + 14
        let ipHeader = Int(bytes[ip] & 0x0F) * 4
        guard bytes[ip + 9] == 17 else { continue }
        let udp = ip + ipHeader
        let dns = udp + 8
        guard dns + 12 < packet + length else { continue }
        // The question name, as text (no compression in a question's first name).
        var labels: [String] = []
        var at = dns + 12
        while at < packet + length, bytes[at] != 0, labels.count < 10 {
            let count = Int(bytes[at])
            guard count < 64, at + 1 + count <= packet + length else { break }
            labels.append(String(decoding: bytes[(at + 1)..<(at + 1 + count)], as: UTF8.self))
            at += 1 + count
        }
        datagrams.append(CapturedDatagram(
            time: seconds + fraction / (nanoseconds ? 1e9 : 1e6), sourcePort: u16(udp), destinationPort: u16(udp + 2),
            id: u16(dns), isResponse: bytes[dns + 2] & 0x80 != 0, name: labels.joined(separator: ".")))
    }
    return datagrams
}

/// Splits the proxied queries of the capture at `path` (proxy on `proxyPort`, upstream on `upstreamPort`).
func splitLatency(capture path: String, proxyPort: Int, upstreamPort: Int) -> LatencySplit? {
    let datagrams = readCapture(path)
    struct Key: Hashable { var port: UInt16, id: UInt16 }
    var upstreamQueries: [Key: (time: Double, name: String)] = [:]
    var clientReplies: [(key: Key, time: Double)] = []
    // Per name, upstream exchanges in time order: (sent, answered).
    var exchanges: [String: [(sent: Double, answered: Double)]] = [:]
    var clientAsked: [(key: Key, time: Double, name: String)] = []
    for datagram in datagrams {
        if Int(datagram.destinationPort) == proxyPort && !datagram.isResponse {
            let key = Key(port: datagram.sourcePort, id: datagram.id)
            clientAsked.append((key, datagram.time, datagram.name))
        } else if Int(datagram.sourcePort) == proxyPort && datagram.isResponse {
            clientReplies.append((Key(port: datagram.destinationPort, id: datagram.id), datagram.time))
        } else if Int(datagram.destinationPort) == upstreamPort && !datagram.isResponse {
            upstreamQueries[Key(port: datagram.sourcePort, id: datagram.id)] = (datagram.time, datagram.name)
        } else if Int(datagram.sourcePort) == upstreamPort && datagram.isResponse,
                  let sent = upstreamQueries.removeValue(forKey: Key(port: datagram.destinationPort, id: datagram.id)) {
            exchanges[sent.name, default: []].append((sent.time, datagram.time))
        }
    }
    var replyTime: [Key: Double] = [:]
    for reply in clientReplies where replyTime[reply.key] == nil { replyTime[reply.key] = reply.time }
    var cursor: [String: Int] = [:]
    var proxy: [Double] = [], upstream: [Double] = [], total: [Double] = []
    for asked in clientAsked {
        guard let answered = replyTime[asked.key], let legs = exchanges[asked.name] else { continue }
        var index = cursor[asked.name, default: 0]
        while index < legs.count && legs[index].sent < asked.time { index += 1 }
        cursor[asked.name] = index + 1
        guard index < legs.count, legs[index].answered <= answered else { continue }
        let leg = legs[index]
        upstream.append(leg.answered - leg.sent)
        proxy.append((leg.sent - asked.time) + (answered - leg.answered))
        total.append(answered - asked.time)
    }
    guard !total.isEmpty else { return nil }
    func percentiles(_ values: [Double]) -> (p50: Double, p99: Double) {
        let sorted = values.sorted()
        return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))])
    }
    return LatencySplit(matched: total.count, proxy: percentiles(proxy), upstream: percentiles(upstream),
                        total: percentiles(total))
}
