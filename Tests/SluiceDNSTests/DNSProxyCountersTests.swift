// The proxy's counters: each name bumps its own slot (the ordinal shortcut agrees with `allCases`), and a
// latency histogram snapshot subtracts an earlier one.
@testable import SluiceDNS
import Testing

struct DNSProxyCountersTests {
    @Test func everyCounterHasItsOwnSlot() {
        for (index, counter) in DNSCounter.allCases.enumerated() {
            #expect(counter.ordinal == index, "\(counter)")
            let counters = DNSProxyCounters()
            counters.increment(counter, by: 3)
            let changed = counters.snapshot().filter { $0.value != 0 }
            #expect(changed == [counter.rawValue: 3])
        }
    }

    @Test func histogramSinceAnEarlierSnapshot() {
        let counters = DNSProxyCounters()
        counters.recordUpstreamLatency(microseconds: 100)
        let earlier = counters.upstreamLatency()
        counters.recordUpstreamLatency(microseconds: 700)
        counters.recordUpstreamLatency(microseconds: 900)
        let recent = counters.upstreamLatency().since(earlier)
        #expect(recent.count == 2 && recent.sumMicroseconds == 1600)
        #expect(recent.bound(forQuantile: 0.5) == 1_000 && recent.bound(forQuantile: 0.99) == 1_000)
        #expect(recent.cumulative.first?.count == 0)  // the 100 µs one is in the earlier snapshot
    }
}
