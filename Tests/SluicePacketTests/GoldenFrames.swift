// Hand-built frames, byte by byte, that the parser tests check field by field and that the
// truncation and fuzz tests start from. Written out in hex with the header boundaries visible
// so a reader can check them against the RFC layouts without trusting the builder.

/// Parses "45 00 00 20 ..." (whitespace and newlines ignored) into bytes.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

enum GoldenFrames {
    static let macs = "020000000002 020000000001"
    static let v6Source = "20010db8000000000000000000000001"  // 2001:db8::1
    static let v6Destination = "20010db8000000000000000000000002"  // 2001:db8::2
    static let v6Router = "20010db80000000000000000000000fe"  // 2001:db8::fe

    /// IPv4/UDP 192.168.1.2:12345 → 10.0.0.1:53, DF set, 4 bytes payload.
    static let ipv4UDP = hexBytes("""
        \(macs) 0800
        45 00 0020 1234 4000 40 11 0000 c0a80102 0a000001
        3039 0035 000c 0000
        deadbeef
        """)

    /// VLAN 100, IPv4 with one word of options, TCP SYN|ACK 10.1.2.3:50000 → 198.51.100.7:443, 4 bytes payload.
    static let vlanIPv4TCPWithOptions = hexBytes("""
        \(macs) 8100 0064 0800
        46 00 0030 0001 0000 3f 06 0000 0a010203 c6336407
        01010100
        c350 01bb 00000001 00000000 50 12 ffff 0000 0000
        01020304
        """)

    /// IPv6, hop-by-hop and destination options headers, TCP SYN 2001:db8::1:1234 → 2001:db8::2:80.
    static let ipv6TCPWithExtensions = hexBytes("""
        \(macs) 86dd
        60000000 0024 00 40 \(v6Source) \(v6Destination)
        3c 00 01 04 00000000
        06 00 01 04 00000000
        04d2 0050 00000001 00000000 50 02 ffff 0000 0000
        """)

    /// ICMPv4 echo request 10.0.0.5 → 8.8.8.8, identifier 0xabcd.
    static let ipv4EchoRequest = hexBytes("""
        \(macs) 0800
        45 00 001c 0000 0000 40 01 0000 0a000005 08080808
        08 00 0000 abcd 0001
        """)

    /// ICMPv4 time exceeded from 10.0.0.254 quoting the UDP packet of `ipv4UDP` (TTL 1).
    static let ipv4TimeExceeded = hexBytes("""
        \(macs) 0800
        45 00 0038 0000 0000 40 01 0000 0a0000fe c0a80102
        0b 00 0000 00000000
        45 00 0020 1234 4000 01 11 0000 c0a80102 0a000001
        3039 0035 000c 0000
        """)

    /// ICMPv6 administratively prohibited from 2001:db8::fe quoting a TCP packet ::1:1234 → ::2:80.
    static let ipv6Unreachable = hexBytes("""
        \(macs) 86dd
        60000000 0038 3a 40 \(v6Router) \(v6Source)
        01 01 0000 00000000
        60000000 0014 06 3f \(v6Source) \(v6Destination)
        04d2 0050 00000001
        """)

    /// IPv4 non-first fragment (offset 1480, MF clear) of a UDP datagram: no transport header.
    static let ipv4LaterFragment = hexBytes("""
        \(macs) 0800
        45 00 001c 1234 00b9 40 11 0000 c0a80102 0a000001
        ffffffff ffffffff
        """)

    /// IPv6 first fragment (offset 0, M set, id 42) of a UDP datagram 5000 → 5001.
    static let ipv6FirstFragment = hexBytes("""
        \(macs) 86dd
        60000000 0018 2c 40 \(v6Source) \(v6Destination)
        11 00 0001 0000002a
        1388 1389 0064 0000
        0102030405060708
        """)

    /// All of the above, for the truncation and fuzz tests.
    static let all: [[UInt8]] = [
        ipv4UDP, vlanIPv4TCPWithOptions, ipv6TCPWithExtensions, ipv4EchoRequest, ipv4TimeExceeded,
        ipv6Unreachable, ipv4LaterFragment, ipv6FirstFragment,
    ]
}

/// Parses `bytes` as a frame.
func parse(_ bytes: [UInt8]) throws(ParseFailure) -> ParsedPacket {
    let result: Result<ParsedPacket, ParseFailure> = bytes.withUnsafeBytes { buffer in
        Result { () throws(ParseFailure) -> ParsedPacket in try PacketParser.parse(buffer) }
    }
    return try result.get()
}

/// The failure parsing `bytes` reports, or nil when it parses.
func failure(_ bytes: [UInt8]) -> ParseFailure? {
    do {
        _ = try parse(bytes)
        return nil
    } catch {
        return error
    }
}

import SluicePacket
