// Domain names: text parsing, presentation, case-insensitive identity and the limits on labels and length.
import Testing
@testable import SluiceWire

@Suite struct DNSNameTests {
    @Test func trailingDotAndCaseDoNotMatter() throws {
        let a = try DNSName("WWW.Example.COM.")
        let b = try DNSName("www.example.com")
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a.text == "www.example.com")
        #expect(a.wireBytes == [3] + Array("WWW".utf8) + [7] + Array("Example".utf8) + [3] + Array("COM".utf8) + [0])
        #expect(Set([a, b]).count == 1)
    }

    @Test func root() throws {
        #expect(try DNSName(".") == .root)
        #expect(try DNSName("") == .root)
        #expect(DNSName.root.text == ".")
        #expect(DNSName.root.isRoot)
    }

    @Test func rejectsEmptyAndOversizedLabels() {
        #expect(throws: DNSParseError(.emptyLabel, at: 2)) { try DNSName("a..b") }
        #expect(throws: DNSParseError(.emptyLabel, at: 0)) { try DNSName(".a") }
        let long = String(repeating: "x", count: 64)
        #expect(throws: DNSParseError(.labelTooLong, at: 64)) { try DNSName(long + ".com") }
        #expect((try? DNSName(String(repeating: "x", count: 63))) != nil)
    }

    @Test func nameLengthLimitIs255OnTheWire() throws {
        // Four labels of 63 = 256 wire bytes with the root: one too many. 63+63+63+61 = 254 + root = 255 fits.
        let l63 = String(repeating: "a", count: 63)
        #expect(throws: DNSParseError.self) { try DNSName([l63, l63, l63, l63].joined(separator: ".")) }
        let fits = try DNSName([l63, l63, l63, String(repeating: "b", count: 61)].joined(separator: "."))
        #expect(fits.wireBytes.count == 255)
        #expect(throws: DNSParseError.self) {
            try DNSName([l63, l63, l63, String(repeating: "b", count: 62)].joined(separator: "."))
        }
    }

    @Test func escapesRoundTrip() throws {
        let name = try DNSName(#"a\.b.c\\d.\000\255x"#)
        #expect(name.labels.map(Array.init) == [Array("a.b".utf8), Array(#"c\d"#.utf8), [0, 255, UInt8(ascii: "x")]])
        #expect(name.text == #"a\.b.c\\d.\000\255x"#)
        #expect(try DNSName(name.text) == name)
        #expect(throws: DNSParseError(.invalidEscape, at: 0)) { try DNSName(#"\256"#) }
        #expect(throws: DNSParseError(.invalidEscape, at: 1)) { try DNSName(#"a\"#) }
        #expect(try DNSName("a b;").text == #"a\032b\059"#)
        #expect(try DNSName(#"q"()@$~!\127"#).text == #"q\034\040\041\064\036~!\127"#)
    }

    @Test func subdomains() throws {
        let base = try DNSName("Example.com")
        #expect(try DNSName("api.EXAMPLE.com").isSubdomain(of: base))
        #expect(try DNSName("example.com.").isSubdomain(of: base))
        #expect(!(try DNSName("badexample.com").isSubdomain(of: base)))
        #expect(!(try DNSName("com").isSubdomain(of: base)))
        #expect(base.isSubdomain(of: .root))
    }
}
