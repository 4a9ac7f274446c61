// The building block of the compiler: given ranges over a key space (address ranges of CIDRs,
// port ranges, protocol or ICMP values), each tagged with a bit, cut the key space into
// elementary intervals and give each interval the set of bits covering it. A lookup is then a
// binary search over interval starts. Built once per policy, off the hot path.

/// A bit set of fixed width held in 64-bit words.
struct BitSet: Hashable {
    var words: [UInt64]

    init(wordCount: Int) { words = Array(repeating: 0, count: wordCount) }

    mutating func insert(_ bit: Int) { words[bit >> 6] |= 1 << UInt64(bit & 63) }

    static func | (lhs: BitSet, rhs: BitSet) -> BitSet {
        var result = lhs
        for index in result.words.indices { result.words[index] |= rhs.words[index] }
        return result
    }

    /// Set bits in ascending order.
    var members: [Int] {
        var result: [Int] = []
        for (index, word) in words.enumerated() {
            var remaining = word
            while remaining != 0 {
                result.append(index << 6 + remaining.trailingZeroBitCount)
                remaining &= remaining - 1
            }
        }
        return result
    }
}

/// Elementary intervals over `0...upperBound` with the bit set of each.
struct IntervalSweep<Key: FixedWidthInteger & UnsignedInteger> {
    /// Interval starts, ascending, the first always 0. Interval i is `starts[i] ..< starts[i+1]`.
    var starts: [Key] = []
    /// The bit set of each interval; adjacent intervals always differ.
    var sets: [BitSet] = []

    /// - Parameters:
    ///   - ranges: closed ranges, each covering its bit.
    ///   - base: bits set everywhere (items with no constraint in this dimension).
    ///   - upperBound: the largest key of the space.
    init(ranges: [(lower: Key, upper: Key, bit: Int)], base: BitSet, bitCount: Int, upperBound: Key) {
        var points: [Key] = [0]
        points.reserveCapacity(ranges.count * 2 + 1)
        for range in ranges {
            points.append(range.lower)
            if range.upper < upperBound { points.append(range.upper + 1) }
        }
        points.sort()
        var unique: [Key] = []
        unique.reserveCapacity(points.count)
        for point in points where unique.last != point { unique.append(point) }

        func index(of key: Key) -> Int {
            var low = 0, count = unique.count
            while count > 1 {
                let half = count / 2
                if unique[low + half] <= key { low += half }
                count -= half
            }
            return low
        }
        var startsAt = Array(repeating: [Int](), count: unique.count)
        var endsAt = Array(repeating: [Int](), count: unique.count)
        for range in ranges {
            startsAt[index(of: range.lower)].append(range.bit)
            if range.upper < upperBound { endsAt[index(of: range.upper + 1)].append(range.bit) }
        }
        // Counters, not flags: one item may cover a point with several overlapping ranges.
        var coverage = Array(repeating: 0, count: bitCount)
        var current = BitSet(wordCount: base.words.count)
        for point in unique.indices {
            for bit in endsAt[point] {
                coverage[bit] -= 1
                if coverage[bit] == 0 { current.words[bit >> 6] &= ~(1 << UInt64(bit & 63)) }
            }
            for bit in startsAt[point] {
                coverage[bit] += 1
                current.insert(bit)
            }
            let set = current | base
            if sets.last == set { continue }
            starts.append(unique[point])
            sets.append(set)
        }
    }
}
