// The learned address set: binding, expiry at TTL + grace (with the minimum TTL), withdrawal scoped to a
// group, eviction of the oldest beyond the bound, table growth, rebinding after a policy change, and
// lock-free readers that keep giving right answers while a writer inserts, withdraws and swaps tables.
import Foundation
import SluicePolicy
import SluicePolicyGen
import Synchronization
import Testing
@testable import SluiceDNS

private func ip(_ text: String) -> IPAddress { IPAddress(text)! }

private func config(grace: UInt32 = 30, minimum: UInt32 = 5, maxEntries: Int = 1000) -> LearnedAddressConfiguration {
    var configuration = LearnedAddressConfiguration()
    configuration.graceSeconds = grace
    configuration.minimumTTLSeconds = minimum
    configuration.maxEntries = maxEntries
    return configuration
}

@Suite struct LearnedAddressSetTests {
    @Test func learnedAddressesMatchOnlyTheirRule() {
        let set = LearnedAddressSet(configuration: config())
        set.learn(hostname: "www.sluice.test", group: 1, rule: 2, groupID: "g", ruleID: "r",
                  addresses: [(ip("192.0.2.10"), 300), (ip("2001:db8::10"), 300)])
        #expect(set.contains(group: 1, rule: 2, address: ip("192.0.2.10")))
        #expect(set.contains(group: 1, rule: 2, address: ip("2001:db8::10")))
        #expect(!set.contains(group: 1, rule: 3, address: ip("192.0.2.10")))
        #expect(!set.contains(group: 0, rule: 2, address: ip("192.0.2.10")))
        #expect(!set.contains(group: 1, rule: 2, address: ip("192.0.2.11")))
        // The IPv4 value 192.0.2.10 as an IPv6 address is a different address.
        #expect(!set.contains(group: 1, rule: 2, address: .v6(0xC000_020A)))
        let entries = set.entries()
        #expect(entries.count == 1)
        #expect(entries.first?.hostname == "www.sluice.test" && entries.first?.groupID == "g")
        #expect(entries.first?.addresses.map(\.address) == [ip("192.0.2.10"), ip("2001:db8::10")])
    }

    @Test func expiresAfterTTLPlusGraceWithTheMinimumApplied() {
        let set = LearnedAddressSet(configuration: config(grace: 30, minimum: 5))
        let start = set.now()
        set.learn(hostname: "a.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(ip("10.9.0.1"), 60)])
        set.learn(hostname: "b.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(ip("10.9.0.2"), 0)])
        let expiryA = set.entries().first { $0.hostname == "a.test" }!.addresses[0].expiresAt
        #expect(expiryA >= start + 90_000 && expiryA <= set.now() + 90_000)
        set.advanceClock(byMilliseconds: 34_000)  // b: minimum 5 s + grace 30 s = 35 s
        #expect(set.contains(group: 0, rule: 0, address: ip("10.9.0.2")))
        set.advanceClock(byMilliseconds: 2_000)
        #expect(!set.contains(group: 0, rule: 0, address: ip("10.9.0.2")))
        #expect(set.contains(group: 0, rule: 0, address: ip("10.9.0.1")))
        set.advanceClock(byMilliseconds: 55_000)  // a: 60 + 30 = 90 s
        #expect(!set.contains(group: 0, rule: 0, address: ip("10.9.0.1")))
        #expect(set.entries().isEmpty)
        set.purgeExpired()
        #expect(set.statistics().entries == 0 && set.statistics().expired == 2)
    }

    @Test func aLaterAnswerExtendsButNeverShortens() {
        let set = LearnedAddressSet(configuration: config(grace: 0, minimum: 1))
        set.learn(hostname: "a.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(ip("10.9.0.1"), 100)])
        set.learn(hostname: "a.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(ip("10.9.0.1"), 10)])
        set.advanceClock(byMilliseconds: 50_000)
        #expect(set.contains(group: 0, rule: 0, address: ip("10.9.0.1")))
    }

    @Test func withdrawalRemovesTheNamesBindingsInThatGroupOnly() {
        let set = LearnedAddressSet(configuration: config())
        set.learn(hostname: "a.test", group: 0, rule: 1, groupID: "g0", ruleID: "r", addresses: [(ip("10.9.0.1"), 60)])
        set.learn(hostname: "a.test", group: 1, rule: 0, groupID: "g1", ruleID: "r", addresses: [(ip("10.9.0.1"), 60)])
        // Another name vouching for the same address under the same rule keeps it reachable.
        set.learn(hostname: "b.test", group: 0, rule: 1, groupID: "g0", ruleID: "r", addresses: [(ip("10.9.0.1"), 60)])
        set.learn(hostname: "a.test", group: 0, rule: 1, groupID: "g0", ruleID: "r", addresses: [(ip("10.9.0.2"), 60)])
        #expect(set.withdraw(hostname: "a.test", group: 0) == 2)
        #expect(set.contains(group: 0, rule: 1, address: ip("10.9.0.1")))  // b.test still vouches
        #expect(!set.contains(group: 0, rule: 1, address: ip("10.9.0.2")))
        #expect(set.contains(group: 1, rule: 0, address: ip("10.9.0.1")))
        #expect(set.withdraw(hostname: "b.test") == 1)
        #expect(!set.contains(group: 0, rule: 1, address: ip("10.9.0.1")))
        #expect(set.statistics().withdrawn == 3)
        // Learning again after a withdrawal works (the dead slot comes back to life).
        set.learn(hostname: "a.test", group: 0, rule: 1, groupID: "g0", ruleID: "r", addresses: [(ip("10.9.0.2"), 60)])
        #expect(set.contains(group: 0, rule: 1, address: ip("10.9.0.2")))
    }

    @Test func boundedByEvictingTheOldest() {
        let set = LearnedAddressSet(configuration: config(maxEntries: 4))
        for index in 1...6 {
            set.learn(hostname: "n\(index).test", group: 0, rule: 0, groupID: "g", ruleID: "r",
                      addresses: [(.v4(0x0A00_0000 + UInt32(index)), 300)])
        }
        let statistics = set.statistics()
        #expect(statistics.entries == 4 && statistics.evicted == 2)
        #expect(!set.contains(group: 0, rule: 0, address: .v4(0x0A00_0001)))
        #expect(!set.contains(group: 0, rule: 0, address: .v4(0x0A00_0002)))
        for index in 3...6 { #expect(set.contains(group: 0, rule: 0, address: .v4(0x0A00_0000 + UInt32(index)))) }
        // The same answer again at once changes nothing (it would not extend n3 by more than 1 s)...
        set.learn(hostname: "n3.test", group: 0, rule: 0, groupID: "g", ruleID: "r",
                  addresses: [(.v4(0x0A00_0003), 300)])
        let entry = set.entries().first { $0.hostname == "n3.test" }
        // ...but a refresh that extends it makes n3 the most recent, so n4 is the oldest.
        set.advanceClock(byMilliseconds: 2_000)
        set.learn(hostname: "n3.test", group: 0, rule: 0, groupID: "g", ruleID: "r",
                  addresses: [(.v4(0x0A00_0003), 300)])
        let refreshed = set.entries().first { $0.hostname == "n3.test" }
        #expect(refreshed!.addresses[0].expiresAt == entry!.addresses[0].expiresAt + 2_000)
        set.learn(hostname: "n7.test", group: 0, rule: 0, groupID: "g", ruleID: "r",
                  addresses: [(.v4(0x0A00_0007), 300)])
        #expect(set.contains(group: 0, rule: 0, address: .v4(0x0A00_0003)))
        #expect(!set.contains(group: 0, rule: 0, address: .v4(0x0A00_0004)))
    }

    @Test func anAddressStaysUntilTheLastNameVouchingForItGoes() {
        let set = LearnedAddressSet(configuration: config(grace: 0, minimum: 1))
        let address = ip("198.51.100.7")
        set.learn(hostname: "long.cdn.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(address, 100)])
        set.learn(hostname: "short.cdn.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(address, 10)])
        // The name holding the latest expiry goes: the address now lives as long as the other one.
        set.withdraw(hostname: "long.cdn.test")
        #expect(set.contains(group: 0, rule: 0, address: address))
        set.advanceClock(byMilliseconds: 11_000)
        #expect(!set.contains(group: 0, rule: 0, address: address))
        // The other way round: dropping a name that does not hold the latest keeps the latest.
        set.learn(hostname: "long.cdn.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(address, 100)])
        set.learn(hostname: "short.cdn.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(address, 10)])
        set.withdraw(hostname: "short.cdn.test")
        set.advanceClock(byMilliseconds: 50_000)
        #expect(set.contains(group: 0, rule: 0, address: address))
        set.withdraw(hostname: "long.cdn.test")
        #expect(!set.contains(group: 0, rule: 0, address: address))
    }

    @Test func purgeRemovesWhatExpiredAndOnlyThat() {
        let set = LearnedAddressSet(configuration: config(grace: 0, minimum: 1))
        set.learn(hostname: "long.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(ip("192.0.2.1"), 100)])
        set.purgeExpired()
        #expect(set.statistics().expired == 0 && set.statistics().entries == 1)
        // A shorter binding learnt later lowers the point from which a purge finds work.
        set.learn(hostname: "short.test", group: 0, rule: 0, groupID: "g", ruleID: "r", addresses: [(ip("192.0.2.2"), 10)])
        set.advanceClock(byMilliseconds: 11_000)
        set.purgeExpired()
        #expect(set.statistics().expired == 1 && set.statistics().entries == 1)
        set.purgeExpired()
        #expect(set.statistics().expired == 1)
        set.advanceClock(byMilliseconds: 90_000)
        set.purgeExpired()
        #expect(set.statistics().expired == 2 && set.statistics().entries == 0)
    }

    @Test func manyNamesOnOneAddressCostNoMorePerAnswerThanOne() {
        // One CDN address behind tens of thousands of names, learnt past the bound: each answer must cost
        // about the same as for a lone name (it used to walk every vouching name, twice with eviction:
        // minutes here instead of well under a second).
        let set = LearnedAddressSet(configuration: config(maxEntries: 4096))
        let address = ip("198.51.100.8")
        let started = ContinuousClock.now
        for index in 0..<30_000 {
            set.learn(hostname: "n\(index).cdn.test", group: 0, rule: 0, groupID: "g", ruleID: "r",
                      addresses: [(address, 300)])
        }
        let elapsed = ContinuousClock.now - started
        #expect(set.statistics().entries == 4096 && set.statistics().evicted == 30_000 - 4096)
        #expect(set.contains(group: 0, rule: 0, address: address))
        #expect(elapsed < .seconds(5), "took \(elapsed)")
    }

    @Test func growsThroughManyTablesWithoutLosingEntries() {
        let set = LearnedAddressSet(configuration: config(maxEntries: 100_000))
        for index in 0..<20_000 {
            set.learn(hostname: "h\(index % 97).test", group: index % 3, rule: index % 5, groupID: "g", ruleID: "r",
                      addresses: [(.v4(0x0A00_0000 + UInt32(index)), 300)])
        }
        #expect(set.statistics().tablesBuilt > 5)
        #expect(set.statistics().retiredTables == 0)  // no reader was active: all reclaimed
        for index in stride(from: 0, to: 20_000, by: 7) {
            #expect(set.contains(group: index % 3, rule: index % 5, address: .v4(0x0A00_0000 + UInt32(index))))
            #expect(!set.contains(group: (index + 1) % 3, rule: index % 5, address: .v4(0x0A00_0000 + UInt32(index))))
        }
    }

    /// With a new address in every answer and the set full, tables of one capacity follow each other, and
    /// each is built in the mapping of one retired before it, zeroed a piece per write. Its old keys must
    /// be gone: an address evicted long ago, still within its TTL in the retired table, must not be found
    /// after the table is reused (it would be, were the zeroing skipped or short).
    @Test func recycledTablesHoldOnlyCurrentKeys() async {
        let set = LearnedAddressSet(configuration: config(maxEntries: 2_048))
        func address(_ index: Int) -> IPAddress { .v4(0x0B00_0000 + UInt32(index)) }
        for index in 0..<60_000 {
            if index % 1000 == 0 { await Task.yield() }  // long and synchronous: let other tests' tasks run
            set.learn(hostname: "r\(index).test", group: 0, rule: 0, groupID: "g", ruleID: "r",
                      addresses: [(address(index), 300)])
            guard set.contains(group: 0, rule: 0, address: address(index)),
                  index < 2_048 || set.contains(group: 0, rule: 0, address: address(index - 2_047)),
                  index < 4_096 || !set.contains(group: 0, rule: 0, address: address(index - 4_096)),
                  index < 9_000 || !set.contains(group: 0, rule: 0, address: address(index - 9_000)) else {
                Issue.record("after learning \(index): a learned address is missing or an evicted one is present")
                return
            }
        }
        #expect(set.statistics().tablesRecycled >= 3, "\(set.statistics())")
    }

    /// A new table is filled a few hundred keys per write while readers use the published one: after
    /// every write each key learned so far must still be found (the new one, and earlier ones at random),
    /// through growth and then through the compaction of a table left mostly dead by withdrawals.
    @Test func tablesMigrateAcrossWritesWithoutMissingAKey() async {
        let set = LearnedAddressSet(configuration: config(maxEntries: 100_000))
        var random = SeededRandom(seed: 0x7AB1E)
        func address(_ index: Int) -> IPAddress { .v4(0x0A00_0000 + UInt32(index)) }
        for index in 0..<20_000 {
            if index % 1000 == 0 { await Task.yield() }  // long and synchronous: let other tests' tasks run
            set.learn(hostname: "h\(index).test", group: 0, rule: 0, groupID: "g", ruleID: "r",
                      addresses: [(address(index), 300)])
            let earlier = (0..<4).map { _ in Int.random(in: 0...index, using: &random) }
            guard ([index] + earlier).allSatisfy({ set.contains(group: 0, rule: 0, address: address($0)) }),
                  !set.contains(group: 0, rule: 0, address: address(30_000 + index)) else {
                Issue.record("after learning \(index): a learned address is missing or a stranger is present")
                return
            }
        }
        let grown = set.statistics().tablesBuilt
        #expect(grown >= 8)
        for index in 0..<18_000 {
            set.withdraw(hostname: "h\(index).test")
            let survivor = Int.random(in: 18_000..<20_000, using: &random)
            guard set.contains(group: 0, rule: 0, address: address(survivor)),
                  !set.contains(group: 0, rule: 0, address: address(index)) else {
                Issue.record("after withdrawing \(index): wrong answer")
                return
            }
        }
        #expect(set.statistics().tablesBuilt > grown)  // compacted
        for index in 18_000..<20_000 { #expect(set.contains(group: 0, rule: 0, address: address(index))) }
        // Retired tables are unmapped a mebibyte per write: a few more writes and none is left.
        for _ in 0..<64 where set.tablesBeingUnmapped > 0 { set.purgeExpired() }
        #expect(set.tablesBeingUnmapped == 0 && set.statistics().retiredTables == 0)
    }

    @Test func rebindMovesBindingsToNewIndicesOrDropsThem() {
        let set = LearnedAddressSet(configuration: config())
        set.learn(hostname: "a.test", group: 0, rule: 0, groupID: "g", ruleID: "keep",
                  addresses: [(ip("10.9.0.1"), 60)])
        set.learn(hostname: "b.test", group: 0, rule: 1, groupID: "g", ruleID: "drop",
                  addresses: [(ip("10.9.0.2"), 60)])
        set.rebind { _, _, rule in rule == "keep" ? (group: 2, rule: 3) : nil }
        #expect(set.contains(group: 2, rule: 3, address: ip("10.9.0.1")))
        #expect(!set.contains(group: 0, rule: 0, address: ip("10.9.0.1")))
        #expect(!set.contains(group: 0, rule: 1, address: ip("10.9.0.2")))
        #expect(set.entries().map(\.hostname) == ["a.test"])
        set.removeAll()
        #expect(set.entries().isEmpty && !set.contains(group: 2, rule: 3, address: ip("10.9.0.1")))
    }

    /// Readers on several threads check a fixed set of always-present and never-present keys while the
    /// writer churns other keys (inserting, withdrawing, rebuilding and swapping tables). Any wrong answer
    /// would be a torn read or a use of a reclaimed table.
    @Test func lockFreeReadersStayCorrectWhileTheWriterSwapsTables() {
        let set = LearnedAddressSet(configuration: config(maxEntries: 4096))
        for index in 0..<64 {
            set.learn(hostname: "stable\(index).test", group: 7, rule: 7, groupID: "g", ruleID: "r",
                      addresses: [(.v4(0xC0A8_0000 + UInt32(index)), 3600)])
        }
        let reader = set.reader
        let stop = ManagedFlag()
        let wrong = Atomic<Int>(0)
        let lookups = Atomic<Int>(0)
        let done = DispatchGroup()
        // Real threads, not tasks: spinning readers must not starve the writer of the cooperative pool.
        for _ in 0..<2 {
            done.enter()
            Thread.detachNewThread {
                var round = 0
                while !stop.isSet || round < 1000 {
                    let index = UInt32(round % 64)
                    let address = IPAddress.v4(0xC0A8_0000 + index)
                    if !reader.contains(group: 7, rule: 7, address: address) { wrong.add(1, ordering: .relaxed) }
                    if reader.contains(group: 7, rule: 8, address: address) { wrong.add(1, ordering: .relaxed) }
                    round += 1
                }
                lookups.add(round * 2, ordering: .relaxed)
                done.leave()
            }
        }
        for round in 0..<20_000 {
            set.learn(hostname: "churn\(round % 500).test", group: round % 4, rule: 0, groupID: "g", ruleID: "r",
                      addresses: [(.v4(0x0A00_0000 + UInt32(round)), 60)])
            if round % 3 == 0 { set.withdraw(hostname: "churn\((round / 3) % 500).test") }
            if round % 5000 == 0 { set.purgeExpired() }
        }
        stop.set()
        done.wait()
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(lookups.load(ordering: .relaxed) >= 4000)
        #expect(set.statistics().tablesBuilt > 1)
        set.purgeExpired()  // no reader left: whatever was retired is reclaimed now
        #expect(set.statistics().retiredTables == 0)
    }
}

/// A flag one task sets and others poll.
final class ManagedFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
