// The hash index of the learned set's names and keys and of the answer cache's questions: hash ─► Int32
// slot of the owner's own arrays. The owner keeps the keys; the index keeps 8 bytes per bucket, a 32-bit
// hash tag and the slot, in one flat array probed linearly:
//
//   bucket: [ tag (32) | slot + 1 (32) ]   0 = empty; home bucket = tag & mask; load ≤ 1/2
//
// Why not Dictionary<Key, Int32>: under a cache-hostile load every query inserts a name and evicts one,
// and Swift's Dictionary compares probed keys by value (a retain and a pointer chase into a cold string
// per probe) and rehashes with a fresh Hasher every entry its deletions move. Here a probe compares tags
// (the owner's equality runs only on a tag match, almost always the sought key), and deletion shifts
// entries back by their stored tags without hashing anything. In dns-state-bench this was ~20 % of a
// cache-on miss; under load the cold probes cost more (docs/benchmarks.md, sixth round).

import CSluiceSystem

/// An open-addressing index of Int32 slots by hash. Not thread-safe: its owner serialises. The owner
/// hashes each key once and supplies equality on its slots.
struct SlotIndex {
    private var buckets: [UInt64]
    private var mask: Int
    /// Slots indexed.
    private(set) var count = 0

    /// An empty index sized for `capacity` slots before it grows.
    init(capacity: Int = 8) {
        var size = 16
        while size < 2 * capacity { size <<= 1 }
        buckets = Array(repeating: 0, count: size)
        mask = size - 1
    }

    /// The 32-bit tag of a hash: both halves folded, so a 64-bit hash's upper bits count too.
    @inline(__always)
    private static func tag(_ hash: Int) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: hash ^ (hash >> 32)))
    }

    /// The slot of the key hashed `hash` for which `matches` holds; otherwise nil and the bucket where
    /// it belongs, for `insert` (valid until the index changes).
    @inline(__always)
    func find(_ hash: Int, matching matches: (Int32) -> Bool) -> (slot: Int32?, bucket: Int) {
        let tag = Self.tag(hash)
        return buckets.withUnsafeBufferPointer { buckets in
            var bucket = Int(truncatingIfNeeded: tag) & mask
            while true {
                let entry = buckets[bucket]
                if entry == 0 { return (nil, bucket) }
                if entry >> 32 == tag, matches(Int32(truncatingIfNeeded: entry) &- 1) {
                    return (Int32(truncatingIfNeeded: entry) &- 1, bucket)
                }
                bucket = (bucket &+ 1) & mask
            }
        }
    }

    /// Starts loading the home bucket of `hash` into the cache (a hint, for a lookup or removal soon).
    @inline(__always)
    func prefetch(_ hash: Int) {
        let bucket = Int(truncatingIfNeeded: Self.tag(hash)) & mask
        buckets.withUnsafeBufferPointer { sluice_prefetch($0.baseAddress! + bucket) }
    }

    /// Indexes `slot` under `hash` in `bucket`, which `find` gave for the same hash with no change since.
    mutating func insert(_ slot: Int32, hash: Int, at bucket: Int) {
        precondition(slot >= 0 && buckets[bucket] == 0)
        buckets[bucket] = Self.tag(hash) << 32 | UInt64(UInt32(slot) + 1)
        count += 1
        if 2 * count > buckets.count { grow() }
    }

    /// Drops the entry of `slot`, indexed under `hash`. Entries after it in the probe run move back into
    /// the hole when their home bucket allows, so lookups never need tombstones.
    mutating func remove(_ slot: Int32, hash: Int) {
        let entry = Self.tag(hash) << 32 | UInt64(UInt32(slot) + 1)
        let mask = self.mask
        buckets.withUnsafeMutableBufferPointer { buckets in
            var hole = Int(truncatingIfNeeded: entry >> 32) & mask
            while buckets[hole] != entry {
                precondition(buckets[hole] != 0, "SlotIndex.remove: slot not indexed")
                hole = (hole &+ 1) & mask
            }
            var next = (hole &+ 1) & mask
            while buckets[next] != 0 {
                let home = Int(truncatingIfNeeded: buckets[next] >> 32) & mask
                // It may fill the hole when the hole lies on its probe path: from its home to where it is.
                if (next &- home) & mask >= (next &- hole) & mask {
                    buckets[hole] = buckets[next]
                    hole = next
                }
                next = (next &+ 1) & mask
            }
            buckets[hole] = 0
        }
        count -= 1
    }

    /// Doubles the buckets and places every entry again by its stored tag (no key is hashed).
    private mutating func grow() {
        let old = buckets
        buckets = Array(repeating: 0, count: old.count * 2)
        mask = buckets.count - 1
        for entry in old where entry != 0 {
            var bucket = Int(truncatingIfNeeded: entry >> 32) & mask
            while buckets[bucket] != 0 { bucket = (bucket + 1) & mask }
            buckets[bucket] = entry
        }
    }
}
