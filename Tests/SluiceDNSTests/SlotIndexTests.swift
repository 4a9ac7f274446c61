// SlotIndex against a dictionary model, under seeded random inserts and removals with hashes chosen to
// collide: few distinct home buckets and tags shared between keys, so probe runs are long, wrap around
// the end of the bucket array and cross each other. After every operation each key the model holds must
// be found at its slot and a sample of absent keys must not be: a removal that shifts an entry out of
// its probe path, or leaves a hole inside one, loses a key.
import SluicePolicyGen
import Testing
@testable import SluiceDNS

@Suite("SlotIndex")
struct SlotIndexTests {
    /// Keys are Ints; the slot of key k is the owner's array position, here k itself, so equality on a
    /// slot is "slot == k". Colliding hashes: keys equal modulo `spread` share their tag, and the tags sit
    /// at the top of the 32-bit range, so their home buckets are the last ones and probe runs wrap around.
    private static func hashOf(_ key: Int, spread: Int) -> Int {
        Int(UInt32.max - UInt32(key % spread)) << 32  // folded tag: the upper half, the lower being 0
    }

    @Test("finds every key and no other through random inserts and removals with colliding hashes",
          arguments: [(seed: UInt64(1), spread: 3), (seed: 2, spread: 17), (seed: 3, spread: 1_000),
                      (seed: 4, spread: 1)])
    func matchesAModel(seed: UInt64, spread: Int) {
        var random = SeededRandom(seed: seed)
        var index = SlotIndex(capacity: 4)
        var model: Set<Int> = []
        let universe = 0..<400
        for step in 0..<6_000 {
            let key = Int.random(in: universe, using: &random)
            let hash = Self.hashOf(key, spread: spread)
            let found = index.find(hash) { $0 == Int32(key) }
            #expect((found.slot != nil) == model.contains(key), "step \(step): key \(key)")
            if model.contains(key), Bool.random(using: &random) || model.count > 300 {
                index.remove(Int32(key), hash: hash)
                model.remove(key)
            } else if !model.contains(key) {
                index.insert(Int32(key), hash: hash, at: found.bucket)
                model.insert(key)
            }
            #expect(index.count == model.count)
            for held in model {
                let slot = index.find(Self.hashOf(held, spread: spread)) { $0 == Int32(held) }.slot
                if slot != Int32(held) {
                    Issue.record("step \(step): key \(held) lost (found \(String(describing: slot)))")
                    return
                }
            }
            for _ in 0..<8 {
                let absent = Int.random(in: universe, using: &random)
                if !model.contains(absent) {
                    #expect(index.find(Self.hashOf(absent, spread: spread)) { $0 == Int32(absent) }.slot == nil)
                }
            }
        }
    }

    @Test("a tag match alone is not a match: the owner's equality decides")
    func equalityDecides() {
        var index = SlotIndex()
        let hash = 0x1234_5678_9ABC
        index.insert(7, hash: hash, at: index.find(hash) { _ in false }.bucket)
        #expect(index.find(hash) { $0 == 7 }.slot == 7)
        #expect(index.find(hash) { $0 == 8 }.slot == nil)
        let second = index.find(hash) { $0 == 8 }
        index.insert(8, hash: hash, at: second.bucket)
        #expect(index.find(hash) { $0 == 8 }.slot == 8)
        index.remove(7, hash: hash)
        #expect(index.find(hash) { $0 == 7 }.slot == nil)
        #expect(index.find(hash) { $0 == 8 }.slot == 8)
        index.remove(8, hash: hash)
        #expect(index.count == 0 && index.find(hash) { $0 == 8 }.slot == nil)
    }
}
