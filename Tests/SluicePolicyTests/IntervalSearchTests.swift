// The cache-line search tree of the compiled tables: for every size (so every number of levels
// and every partial last line), a search gives what a linear scan gives.
import Testing
@testable import SluicePolicy
import SluicePolicyGen

@Suite struct IntervalSearchTests {
    func check<Key: SearchKey>(_: Key.Type, sizes: [Int], random: inout SeededRandom) {
        for size in sizes {
            var keys = Set<Key>([0])
            while keys.count < size { keys.insert(Key.random(in: 1...Key(truncatingIfNeeded: UInt64.max >> 1), using: &random)) }
            let sorted = keys.sorted()
            var pool: [Key] = Array(repeating: 7, count: Int.random(in: 0..<5, using: &random))  // misalign on purpose
            let ref = PolicyCompiler.Builder.storeTree(sorted, in: &pool)
            let buffer = UnsafeMutableBufferPointer<Key>.allocate(capacity: pool.count)
            defer { buffer.deallocate() }
            _ = buffer.initialize(from: pool)
            var probes = sorted.flatMap { [$0, $0 &+ 1, $0 == 0 ? 0 : $0 - 1] } + [Key.max]
            for _ in 0..<200 { probes.append(Key.random(in: 0...Key.max, using: &random)) }
            for probe in probes {
                let expected = sorted.lastIndex { $0 <= probe }!
                let got = CompiledPolicy.search(buffer, ref, probe)
                if got != expected {
                    Issue.record("size \(size): search(\(probe)) = \(got), expected \(expected)")
                    return
                }
            }
        }
    }

    @Test func searchAgreesWithALinearScan() {
        var random = SeededRandom(seed: 42)
        let sizes = [1, 2, 3, 15, 16, 17, 31, 64, 255, 256, 257, 1000, 4095, 4096, 4097, 5000]
        check(UInt32.self, sizes: sizes, random: &random)
        check(UInt128.self, sizes: sizes, random: &random)
    }
}
