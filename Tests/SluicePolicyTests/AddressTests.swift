// Parsing and printing of IPv4/IPv6 addresses and CIDR prefixes.
import Testing
@testable import SluicePolicy

@Suite struct AddressTests {
    @Test func parsesAndPrintsIPv4() {
        #expect(IPAddress("10.1.2.3") == .v4(0x0a01_0203))
        #expect(IPAddress("10.1.2.3")?.description == "10.1.2.3")
        for bad in ["10.1.2", "10.1.2.3.4", "256.1.1.1", "01.2.3.4", "a.b.c.d", "", "1..2.3", " 1.2.3.4"] {
            #expect(IPAddress(bad) == nil, "\(bad) must not parse")
        }
    }

    @Test func parsesAndPrintsIPv6() {
        #expect(IPAddress("::")?.description == "::")
        #expect(IPAddress("::1")?.description == "::1")
        #expect(IPAddress("2001:DB8:0:0:0:0:0:1")?.description == "2001:db8::1")
        #expect(IPAddress("2001:db8::ffff:1.2.3.4")?.description == "2001:db8::ffff:102:304")
        #expect(IPAddress("1:0:0:2:0:0:0:3")?.description == "1:0:0:2::3")
        for bad in ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "g::", ":1", "1:2:3:4:5:6:7::8:9"] {
            #expect(IPAddress(bad) == nil, "\(bad) must not parse")
        }
    }

    @Test func parsesPrefixesAndRefusesHostBits() throws {
        let prefix = try IPPrefix.parse("10.10.0.0/16").get()
        #expect(prefix.contains(IPAddress("10.10.200.1")!))
        #expect(!prefix.contains(IPAddress("10.11.0.1")!))
        #expect(!prefix.contains(IPAddress("::1")!))
        #expect(IPPrefix.parse("10.10.1.0/16") == .failure(.hostBitsSet(suggestion: "10.10.0.0/16")))
        #expect(IPPrefix.parse("10.0.0.0/33") == .failure(.malformed))
        #expect(IPPrefix.parse("10.0.0.0") == .failure(.malformed))
        #expect(IPPrefix.parse("10.0.0.0/08") == .failure(.malformed))
        let v6 = try IPPrefix.parse("2001:db8::/32").get()
        #expect(v6.contains(IPAddress("2001:db8:1::5")!))
        #expect(v6.range.lowerBound == v6.range.lowerBound & ~((UInt128(1) << 96) - 1))
        #expect(try IPPrefix.parse("0.0.0.0/0").get().range == 0...UInt128(UInt32.max))
    }
}
