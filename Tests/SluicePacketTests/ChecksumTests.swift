// Checksum vectors (RFC 1071's example, a textbook IPv4 header), agreement with a plain
// 16-bit-word reference on random data, transport checksums of built frames, and the RFC 1624
// incremental update against full recomputation.

import SluicePacket
import Testing

/// The obvious implementation: sum 16-bit big-endian words, fold, complement.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

func checksum(_ bytes: [UInt8]) -> UInt16 {
    bytes.withUnsafeBytes { InternetChecksum.checksum($0) }
}

@Suite struct ChecksumTests {
    @Test func rfc1071Example() {
        // RFC 1071 section 3: the ones' complement sum of these bytes is 0xddf2.
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        #expect(bytes.withUnsafeBytes { InternetChecksum.fold(InternetChecksum.add($0)) } == 0xDDF2)
        #expect(checksum(bytes) == ~UInt16(0xDDF2))
    }

    @Test func ipv4HeaderVector() {
        var header = hexBytes("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7")
        #expect(checksum(header) == 0xB861)
        header[10] = 0xB8
        header[11] = 0x61
        #expect(header.withUnsafeBytes { InternetChecksum.verifyIPv4Header($0, l3Offset: 0) })
    }

    @Test func matchesReferenceOnRandomData() {
        var random = SplitMix64(seed: 7)
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            #expect(checksum(bytes) == referenceChecksum(bytes))
        }
    }

    @Test func pseudoHeaderMatchesReference() {
        let udp = GoldenFrames.ipv4UDP
        // Pseudo-header: source, destination, zero, protocol, UDP length; then the UDP datagram.
        var covered = Array(udp[26..<34]) + [0, 17, 0, 12] + Array(udp[34...])
        covered[12 + 6] = 0
        covered[12 + 7] = 0
        var frame = udp
        frame.withUnsafeMutableBytes { buffer in
            let packet = try! PacketParser.parse(UnsafeRawBufferPointer(buffer))
            #expect(InternetChecksum.writeTransport(buffer, packet))
        }
        let stored = UInt16(frame[40]) << 8 | UInt16(frame[41])
        #expect(stored == referenceChecksum(covered))
    }

    @Test(arguments: [IPFamily.v4, .v6])
    func builtFramesVerify(family: IPFamily) throws {
        for protocolNumber: UInt8 in [6, 17, family == .v4 ? 1 : 58] {
            let tuple = FiveTuple(
                family: family, protocolNumber: protocolNumber, source: family == .v4 ? 0x0A00_0001 : 0x2001 << 112 | 1,
                destination: family == .v4 ? 0x0A00_0002 : 0x2001 << 112 | 2, sourcePort: 1000, destinationPort: 2000)
            var frame = FrameBuilder(tuple: tuple).bytes(payload: Array(0..<33))
            let packet = try parse(frame)
            #expect(frame.withUnsafeBytes { InternetChecksum.verifyTransport($0, packet) })
            frame[packet.payloadOffset] ^= 0x01
            #expect(!frame.withUnsafeBytes { InternetChecksum.verifyTransport($0, packet) })
        }
    }

    @Test func incrementalUpdateEqualsRecompute() {
        var random = SplitMix64(seed: 1624)
        for _ in 0..<20_000 {
            var words = (0..<10).map { _ in UInt16.random(in: 0...0xFFFF, using: &random) }
            words[5] = 0
            var bytes = words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
            let before = checksum(bytes)
            let index = [0, 1, 2, 3, 4, 6, 7, 8, 9].randomElement(using: &random)!
            let old = words[index]
            let new = Bool.random(using: &random) ? UInt16.random(in: 0...0xFFFF, using: &random) : old &- 0x100
            bytes[index * 2] = UInt8(new >> 8)
            bytes[index * 2 + 1] = UInt8(new & 0xFF)
            #expect(InternetChecksum.update(before, replacing: old, with: new) == checksum(bytes))
        }
    }

    @Test func incrementalUpdateOf32BitFieldEqualsRecompute() {
        var random = SplitMix64(seed: 32)
        for _ in 0..<5_000 {
            var header = (0..<20).map { _ in UInt8.random(in: 0...255, using: &random) }
            header[10] = 0
            header[11] = 0
            let before = checksum(header)
            let old = UInt32(header[12]) << 24 | UInt32(header[13]) << 16 | UInt32(header[14]) << 8 | UInt32(header[15])
            let new = UInt32.random(in: 0...UInt32.max, using: &random)
            header.replaceSubrange(12..<16, with: [UInt8(new >> 24), UInt8((new >> 16) & 0xFF), UInt8((new >> 8) & 0xFF), UInt8(new & 0xFF)])
            #expect(InternetChecksum.update(before, replacing: old, with: new) == checksum(header))
        }
    }

    @Test func ttlDecrementKeepsTheHeaderValid() throws {
        var random = SplitMix64(seed: 64)
        for _ in 0..<2_000 {
            let ttl = UInt8.random(in: 2...255, using: &random)
            let tuple = FiveTuple(
                family: .v4, protocolNumber: 17, source: UInt128(UInt32.random(in: 0...UInt32.max, using: &random)),
                destination: UInt128(UInt32.random(in: 0...UInt32.max, using: &random)), sourcePort: 1, destinationPort: 2)
            var frame = FrameBuilder(
                tuple: tuple, hopLimit: ttl, ipv4OptionWords: Int.random(in: 0...3, using: &random),
                identification: UInt16.random(in: 0...0xFFFF, using: &random)
            ).bytes()
            let packet = try parse(frame)
            #expect(frame.withUnsafeMutableBytes { PacketRewriter.decrementHopLimit($0.baseAddress!, packet) })
            #expect(frame[22] == ttl - 1)
            let incremental = UInt16(frame[24]) << 8 | UInt16(frame[25])
            frame[24] = 0
            frame[25] = 0
            let headerLength = Int(frame[14] & 0x0F) * 4
            #expect(incremental == checksum(Array(frame[14..<14 + headerLength])))
        }
    }

    @Test func hopLimitOfOneIsNotForwarded() throws {
        let tuple = FiveTuple(family: .v6, protocolNumber: 17, source: 1, destination: 2, sourcePort: 1, destinationPort: 2)
        var frame = FrameBuilder(tuple: tuple, hopLimit: 1).bytes()
        let packet = try parse(frame)
        #expect(!frame.withUnsafeMutableBytes { PacketRewriter.decrementHopLimit($0.baseAddress!, packet) })
        #expect(frame[21] == 1)
    }
}
