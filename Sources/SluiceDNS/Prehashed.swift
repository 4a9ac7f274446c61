// A dictionary key that carries its hash. Swift's Dictionary removes an entry by moving the entries after
// it back and hashing each of them again; with hostnames and questions as keys, every eviction from the
// answer cache and the learned set paid a name hash (and a retain) per moved entry. Hashed once here,
// a moved key rehashes one Int.

/// `value` with its hash taken once; equal when the hashes and the values are.
struct Prehashed<Value: Hashable>: Hashable {
    let value: Value
    let hash: Int

    init(_ value: Value) {
        self.value = value
        hash = value.hashValue
    }

    static func == (lhs: Prehashed, rhs: Prehashed) -> Bool { lhs.hash == rhs.hash && lhs.value == rhs.value }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}

extension Prehashed: Sendable where Value: Sendable {}
