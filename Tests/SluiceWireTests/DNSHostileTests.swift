// Hand-made hostile DNS messages (compression abuse, lying counts, bad record data, misplaced OPT), every
// truncation of every capture, and a fixed-seed mutation fuzz loop: the parser must refuse with a reason,
// and never trap.
import Testing
@testable import SluiceWire

@Suite struct DNSHostileTests {
    /// A response header with the given counts.
    func header(qd: UInt16 = 1, an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0) -> [UInt8] {
        var bytes: [UInt8] = [0x12, 0x34, 0x81, 0x80]
        for count in [qd, an, ns, ar] { bytes.appendU16(count) }
        return bytes
    }

    func reason(_ bytes: [UInt8]) -> DNSParseError.Reason? {
        do {
            _ = try DNSMessage(parsing: bytes)
            return nil
        } catch {
            return error.reason
        }
    }

    let question: [UInt8] = [3, 0x77, 0x77, 0x77, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1]  // www.test A IN

    @Test func pointerToItself() {
        #expect(reason(header() + [0xC0, 12, 0, 1, 0, 1]) == .forwardPointer)
    }

    @Test func pointerLoopBetweenTwoNames() {
        // Question name at 12: label "a" then pointer to 16; at 16: pointer back to 12.
        let bytes = header(qd: 2) + [1, 0x61, 0xC0, 18, 0, 1, 0, 1] + [0xC0, 12, 0, 1, 0, 1]
        #expect(reason(bytes) == .forwardPointer)
        // The same shape reached from the second name: 20 -> 12 -> "a" -> pointer to 14 (inside its own run).
        let inner = header(qd: 1) + [1, 0x61, 0xC0, 12, 0, 1, 0, 1]
        #expect(reason(inner) == .pointerLoop)
    }

    @Test func forwardPointer() {
        let bytes = header(qd: 2) + [0xC0, 18, 0, 1, 0, 1] + question
        #expect(reason(bytes) == .forwardPointer)
    }

    @Test func pointerIntoHeaderOrPastTheEnd() {
        #expect(reason(header() + [0xC0, 2, 0, 1, 0, 1]) == .pointerOutOfBounds)
        #expect(reason(header() + [0xFF, 0xFF, 0, 1, 0, 1]) == .pointerOutOfBounds)
    }

    @Test func pointerChainBeyondTheBound() {
        // An opaque record (owner root at 12, RDATA from 23) holds a root label and 20 pointers, each to the
        // one before; a second record's owner points at the last. No loop, but 21 pointers for one name.
        let rdataStart = 23
        var rdata: [UInt8] = [0]
        for i in 0..<20 { rdata += [0xC0, UInt8(i == 0 ? rdataStart : rdataStart + 1 + 2 * (i - 1))] }
        var bytes = header(qd: 0, an: 2) + [0, 0, 99, 0, 1, 0, 0, 0, 0]
        bytes.appendU16(UInt16(rdata.count))
        bytes += rdata
        bytes += [0xC0, UInt8(rdataStart + 1 + 2 * 19), 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]
        #expect(reason(bytes) == .tooManyPointers)
        // Pointing at the tenth pointer instead makes an 11-pointer chain, which is allowed.
        bytes[bytes.count - 15] = UInt8(rdataStart + 1 + 2 * 9)
        #expect(reason(bytes) == nil)
    }

    @Test func longLabelsAndReservedLabelTypes() {
        let long = header() + [0x40] + [UInt8](repeating: 0x61, count: 64) + [0, 0, 1, 0, 1]
        #expect(reason(long) == .unsupportedLabelType)
        #expect(reason(header() + [0x80, 0x61, 0, 0, 1, 0, 1]) == .unsupportedLabelType)
    }

    @Test func nameLongerThan255ThroughPointers() {
        // Four 63-byte labels in a row (plus root) exceed 255 even though no single read is long.
        var bytes = header(qd: 1)
        for _ in 0..<4 { bytes += [63] + [UInt8](repeating: 0x62, count: 63) }
        bytes += [0, 0, 1, 0, 1]
        #expect(reason(bytes) == .nameTooLong)

        // Via compression: an opaque record holding three 63-byte labels, then a name of one more label
        // that points at them.
        var rdata: [UInt8] = []
        for _ in 0..<3 { rdata += [63] + [UInt8](repeating: 0x63, count: 63) }
        rdata += [0]
        var message = header(qd: 0, an: 2) + [0, 0, 99, 0, 1, 0, 0, 0, 0]
        message.appendU16(UInt16(rdata.count))
        message += rdata
        message += [63] + [UInt8](repeating: 0x64, count: 63) + [0xC0, 23, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]
        #expect(reason(message) == .nameTooLong)
    }

    @Test func countsLargerThanTheData() {
        #expect(reason(header(qd: 2) + question) == .truncated)
        #expect(reason(header(qd: 1, an: 65_535) + question) == .truncated)
        #expect(reason(header(qd: 0, an: 0, ns: 0, ar: 1)) == .truncated)
        #expect(reason(Array(header().prefix(11))) == .truncated)
        #expect(reason([]) == .truncated)
    }

    @Test func oversizedAndTrailingBytes() {
        #expect(reason(header(qd: 0) + [UInt8](repeating: 0, count: 65_600)) == .messageTooLarge)
        #expect(reason(header() + question + [0]) == .trailingBytes)
        #expect(reason(header() + question) == nil)
    }

    func answer(type: UInt16, rdata: [UInt8]) -> [UInt8] {
        var bytes = header(an: 1) + question + [0xC0, 12]
        bytes.appendU16(type)
        bytes += [0, 1, 0, 0, 0, 60]
        bytes.appendU16(UInt16(rdata.count))
        return bytes + rdata
    }

    @Test func recordDataMustFitItsType() {
        #expect(reason(answer(type: 1, rdata: [1, 2, 3, 4])) == nil)
        #expect(reason(answer(type: 1, rdata: [1, 2, 3])) == .badRecordData)
        #expect(reason(answer(type: 1, rdata: [1, 2, 3, 4, 5])) == .badRecordData)
        #expect(reason(answer(type: 28, rdata: [UInt8](repeating: 0, count: 15))) == .badRecordData)
        #expect(reason(answer(type: 5, rdata: [0xC0, 12])) == nil)
        #expect(reason(answer(type: 5, rdata: [0xC0, 12, 0])) == .badRecordData)   // name shorter than RDATA
        #expect(reason(answer(type: 5, rdata: [1, 0x61])) == .truncated)            // name runs off the end
        var mx = answer(type: 15, rdata: [0, 10, 1, 0x61, 0])
        mx[mx.count - 6] = 4  // RDLENGTH 5 -> 4: the exchange name ends one byte past the RDATA
        #expect(reason(mx) == .badRecordData)
        #expect(reason(answer(type: 6, rdata: [0, 0, 1, 2])) == .badRecordData)     // SOA without integers
        var lying = answer(type: 16, rdata: [1, 0x61])
        lying[lying.count - 3] = 9  // RDLENGTH 2 -> 9: past the end
        #expect(reason(lying) == .truncated)
    }

    func opt(options: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0]
        bytes.appendU16(UInt16(options.count))
        return bytes + options
    }

    @Test func optRecordRules() throws {
        let good = header(ar: 1) + question + opt(options: [0, 10, 0, 2, 0xAA, 0xBB])
        let edns = try #require(try DNSMessage(parsing: good).edns)
        #expect(edns.udpPayloadSize == 1232 && edns.dnssecOK)
        #expect(edns.options == [DNSEDNSOption(code: 10, data: [0xAA, 0xBB])])
        #expect(reason(header(ar: 2) + question + opt(options: []) + opt(options: [])) == .multipleOPT)
        #expect(reason(header(an: 1) + question + opt(options: [])) == .misplacedOPT)
        var named = header(ar: 1) + question + [0xC0, 12] + Array(opt(options: []).dropFirst())
        #expect(reason(named) == .misplacedOPT)
        named = header(ar: 1) + question + opt(options: [0, 10, 0, 9, 0xAA])
        #expect(reason(named) == .badEDNSOption)
        #expect(reason(header(ar: 1) + question + opt(options: [0, 10, 0])) == .badEDNSOption)
    }

    @Test func everyTruncationOfEveryCaptureIsRefused() throws {
        for file in Fixture.names(in: "dns") where !file.hasPrefix("txt-tcp") {
            let bytes = try #require(Fixture.chunks("dns/\(file)").first)
            #expect((try? DNSMessage(parsing: bytes)) != nil, "\(file)")
            for length in 0..<bytes.count {
                #expect(reason(Array(bytes.prefix(length))) != nil, "\(file) cut at \(length)")
            }
        }
    }

    /// Parsed messages must re-serialize into bytes that parse to the same message, and every decoded name
    /// must survive its own presentation form.
    @Test func mutationFuzzNeverTraps() throws {
        var rng = SeededGenerator(seed: 0x5EED_D45)
        let corpus = Fixture.names(in: "dns").compactMap { Fixture.chunks("dns/\($0)").first }
            + [Array(Fixture.stream("dns/txt-tcp.s2c.hex").dropFirst(2))]
        #expect(corpus.count >= 20)
        var accepted = 0
        for iteration in 0..<30_000 {
            let input = mutate(corpus[iteration % corpus.count], using: &rng)
            guard let message = try? DNSMessage(parsing: input) else { continue }
            accepted += 1
            let again = try DNSMessage(parsing: message.serialized())
            #expect(again == message)
            for question in message.questions {
                #expect(try DNSName(question.name.text) == question.name)
            }
            _ = message.resolveAddresses()
            _ = message.errorResponse(.nameError).serialized(maxSize: 512)
        }
        // Some mutations (TTLs, addresses, ids) keep a message valid; make sure those paths ran too.
        #expect(accepted > 1_000)
    }
}
