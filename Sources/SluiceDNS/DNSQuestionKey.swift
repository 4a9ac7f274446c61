// The answer cache's key: a message's first question (name, type, class), read where it lies in the
// message's bytes, with its hash taken once. A query and the responses to it carry the same question at
// offset 12, so the key of a miss points into the client's query and the key of a stored answer into
// the answer's own bytes: neither needs an array of its own (a DNSName per query, and per cached answer
// a name that was freed, cold, at its eviction), and lookups compare bytes.

/// A question in a message's bytes, its name compared and hashed case-insensitively (RFC 4343).
struct DNSQuestionKey: Equatable, Sendable {
    /// The message (shared, not copied); the question's name starts at offset 12.
    let message: [UInt8]
    /// The offset after the name.
    let nameEnd: Int
    let type: UInt16
    let dnsClass: UInt16
    /// Seeded (Hasher) over the lower-cased name, the type and the class: names come from the network,
    /// and a fixed hash would let a client pick names that collide in the cache's index.
    let hash: Int

    /// The first question of `message`; nil when it has none or its name is not written out in plain
    /// labels within the bytes.
    init?(message: [UInt8]) {
        guard let (nameEnd, type, dnsClass) = Self.question(in: message) else { return nil }
        let hash = message.withUnsafeBufferPointer { bytes in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { lower in
                let length = nameEnd - 12  // at most 255: `question(in:)` checked
                for index in 0..<length { lower[index] = Self.folded(bytes[12 + index]) }
                var hasher = Hasher()
                hasher.combine(bytes: UnsafeRawBufferPointer(start: lower.baseAddress, count: length))
                hasher.combine(type)
                hasher.combine(dnsClass)
                return hasher.finalize()
            }
        }
        self.init(message: message, nameEnd: nameEnd, type: type, dnsClass: dnsClass, hash: hash)
    }

    private init(message: [UInt8], nameEnd: Int, type: UInt16, dnsClass: UInt16, hash: Int) {
        self.message = message
        self.nameEnd = nameEnd
        self.type = type
        self.dnsClass = dnsClass
        self.hash = hash
    }

    /// The same question as it lies in `other`, a message repeating it (a response to the query this
    /// key was read from), keeping the hash; nil when `other`'s first question is not this one.
    func rebased(on other: [UInt8]) -> DNSQuestionKey? {
        guard let (nameEnd, type, dnsClass) = Self.question(in: other) else { return nil }
        let key = DNSQuestionKey(message: other, nameEnd: nameEnd, type: type, dnsClass: dnsClass, hash: hash)
        return key == self ? key : nil
    }

    /// Where the first question of `message` ends, with its type and class; nil as for `init`.
    private static func question(in message: [UInt8]) -> (nameEnd: Int, type: UInt16, dnsClass: UInt16)? {
        guard message.count >= 12, message[4] != 0 || message[5] != 0 else { return nil }
        var end = 12
        while end < message.count, message[end] != 0 {
            guard message[end] & 0xC0 == 0 else { return nil }
            end += 1 + Int(message[end])
        }
        guard end - 12 < 255, end + 5 <= message.count else { return nil }
        return (end + 1, UInt16(message[end + 1]) << 8 | UInt16(message[end + 2]),
                UInt16(message[end + 3]) << 8 | UInt16(message[end + 4]))
    }

    @inline(__always)
    private static func folded(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }

    static func == (lhs: DNSQuestionKey, rhs: DNSQuestionKey) -> Bool {
        guard lhs.hash == rhs.hash, lhs.type == rhs.type, lhs.dnsClass == rhs.dnsClass,
              lhs.nameEnd == rhs.nameEnd else { return false }
        return lhs.message.withUnsafeBufferPointer { left in
            rhs.message.withUnsafeBufferPointer { right in
                for index in 12..<lhs.nameEnd where folded(left[index]) != folded(right[index]) { return false }
                return true
            }
        }
    }
}
