// A key that carries its hash, taken once: the learned set's hostnames. Its index (SlotIndex) places and
// removes entries by the stored hash, so an eviction never hashes a name again.

/// `value` with its hash taken once; equal when the hashes and the values are.
struct Prehashed<Value: Hashable>: Equatable {
    let value: Value
    let hash: Int

    init(_ value: Value) {
        self.value = value
        hash = value.hashValue
    }

    static func == (lhs: Prehashed, rhs: Prehashed) -> Bool { lhs.hash == rhs.hash && lhs.value == rhs.value }
}

extension Prehashed: Sendable where Value: Sendable {}
