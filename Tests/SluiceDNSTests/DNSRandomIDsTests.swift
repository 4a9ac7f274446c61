// The pool's buffered random query ids: across several refills they must look like independent draws
// (a buffer left unfilled, or refilled with the same bytes, would hand out predictable ids).
import Testing
@testable import SluiceDNS

@Suite struct DNSRandomIDsTests {
    @Test func idsAcrossRefillsAreDistinctDraws() {
        var ids = DNSRandomIDs()
        let count = DNSRandomIDs.batch * 4
        let drawn = (0..<count).map { _ in ids.next() }
        // 1,024 uniform draws from 65,536 values give ~1,016 distinct ones; a stuck or zero buffer gives few.
        #expect(Set(drawn).count > count - 40)
        // Each refill brings new values, not the first batch again.
        #expect(Array(drawn[0..<DNSRandomIDs.batch]) != Array(drawn[DNSRandomIDs.batch..<(2 * DNSRandomIDs.batch)]))
        // Both bytes vary (a half-filled id would leave one byte constant).
        #expect(Set(drawn.map { $0 >> 8 }).count > 200 && Set(drawn.map { $0 & 0xFF }).count > 200)
    }
}
