// Hostile input: every truncation of every golden frame, the same with the IP length fields
// rewritten to match (so the cut lands in the deeper headers), and a seeded mutation fuzz.
// None may trap; every successful parse must describe offsets inside the frame.

import SluicePacket
import SluicePolicyGen
import Testing

/// The project's seeded generator (SplitMix64), so a fuzz failure reproduces from its seed.
typealias SplitMix64 = SeededRandom

/// Checks what a successful parse promises about offsets, and exercises the code that runs on
/// parsed packets (checksums, ICMP error generation), which must not trap either.
func checkInvariants(_ bytes: [UInt8], _ packet: ParsedPacket, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(packet.l3Offset <= packet.l4Offset, sourceLocation: sourceLocation)
    #expect(packet.l4Offset <= packet.payloadOffset, sourceLocation: sourceLocation)
    #expect(packet.payloadOffset <= packet.packetEnd, sourceLocation: sourceLocation)
    #expect(packet.packetEnd <= bytes.count, sourceLocation: sourceLocation)
    if let embedded = packet.icmp?.embedded {
        #expect(embedded.l3Offset < packet.packetEnd, sourceLocation: sourceLocation)
    }
    bytes.withUnsafeBytes { frame in
        _ = InternetChecksum.verifyTransport(frame, packet)
        var output = [UInt8](repeating: 0, count: 1600)
        output.withUnsafeMutableBytes { buffer in
            _ = ICMPErrorBuilder.write(
                .timeExceeded, answering: packet, original: frame, from: 1, into: buffer,
                sourceMAC: MACAddress(1), destinationMAC: MACAddress(2))
        }
    }
    var copy = bytes
    copy.withUnsafeMutableBytes { frame in _ = PacketRewriter.decrementHopLimit(frame.baseAddress!, packet) }
}

/// Rewrites the IPv4 total length / IPv6 payload length of a frame cut to `bytes.count`, so
/// the IP layer accepts it and the cut shows up in the layers above.
func fixIPLength(_ bytes: inout [UInt8]) {
    guard bytes.count >= 14 else { return }
    var l3 = 14
    var etherType = UInt16(bytes[12]) << 8 | UInt16(bytes[13])
    if etherType == 0x8100, bytes.count >= 18 {
        l3 = 18
        etherType = UInt16(bytes[16]) << 8 | UInt16(bytes[17])
    }
    let remaining = bytes.count - l3
    if etherType == 0x0800, remaining >= 4 {
        bytes[l3 + 2] = UInt8(remaining >> 8)
        bytes[l3 + 3] = UInt8(remaining & 0xFF)
    } else if etherType == 0x86DD, remaining >= 40 {
        bytes[l3 + 4] = UInt8((remaining - 40) >> 8)
        bytes[l3 + 5] = UInt8((remaining - 40) & 0xFF)
    }
}

/// Applies 1 to `times` random mutations to `frame`: a cut, random bytes appended, IP lengths made
/// to match the cut, or (most often) one byte overwritten.
func mutate(_ frame: inout [UInt8], times: ClosedRange<Int>, using random: inout SplitMix64) {
    for _ in 0..<Int.random(in: times, using: &random) {
        switch Int.random(in: 0..<10, using: &random) {
        case 0:
            frame = Array(frame.prefix(Int.random(in: 0...frame.count, using: &random)))
        case 1:
            frame += (0..<Int.random(in: 1...16, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case 2:
            fixIPLength(&frame)
        default:
            if !frame.isEmpty {
                frame[Int.random(in: 0..<frame.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
        }
    }
}

@Suite struct RobustnessTests {
    @Test(arguments: GoldenFrames.all.indices)
    func everyTruncationFails(frameIndex: Int) {
        let frame = GoldenFrames.all[frameIndex]
        for length in 0..<frame.count {
            let cut = Array(frame[0..<length])
            #expect(failure(cut) != nil, "frame \(frameIndex) cut to \(length) bytes parsed")
        }
        #expect(failure(frame) == nil)
    }

    @Test(arguments: GoldenFrames.all.indices)
    func everyTruncationWithConsistentIPLengthIsSafe(frameIndex: Int) {
        let frame = GoldenFrames.all[frameIndex]
        for length in 0..<frame.count {
            var cut = Array(frame[0..<length])
            fixIPLength(&cut)
            if let packet = try? parse(cut) {
                checkInvariants(cut, packet)
            }
        }
    }

    @Test func truncatedTransportHeadersAreNamed() {
        var tcp = Array(GoldenFrames.vlanIPv4TCPWithOptions[0..<50])
        fixIPLength(&tcp)
        #expect(failure(tcp) == .truncatedTCPHeader)
        var udp = Array(GoldenFrames.ipv4UDP[0..<38])
        fixIPLength(&udp)
        #expect(failure(udp) == .truncatedUDPHeader)
        var icmp = Array(GoldenFrames.ipv4EchoRequest[0..<40])
        fixIPLength(&icmp)
        #expect(failure(icmp) == .truncatedICMPHeader)
        var quoted = Array(GoldenFrames.ipv4TimeExceeded[0..<66])
        fixIPLength(&quoted)
        #expect(failure(quoted) == .truncatedEmbeddedHeader)
        var extensions = Array(GoldenFrames.ipv6TCPWithExtensions[0..<60])
        fixIPLength(&extensions)
        #expect(failure(extensions) == .truncatedExtensionHeader)
    }

    @Test func seededMutationFuzz() {
        var random = SplitMix64(seed: 0x5_1CE_2024)
        var parsed = 0
        for _ in 0..<40_000 {
            var frame = GoldenFrames.all.randomElement(using: &random)!
            mutate(&frame, times: 1...4, using: &random)
            if let packet = try? parse(frame) {
                parsed += 1
                checkInvariants(frame, packet)
            }
        }
        // The fuzz must reach the deeper layers, not only bounce off the Ethernet type.
        #expect(parsed > 1_000)
    }
}
