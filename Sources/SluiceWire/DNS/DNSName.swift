// Domain names: decoding from the wire with compression pointers (and every way pointers can be abused),
// encoding back, parsing from text, and the lower-case presentation the policy matches against.
// Names keep the case they arrived in, because a response must echo the question byte for byte
// (resolvers randomise case as a spoofing defence), while equality and hashing ignore ASCII case.

/// A domain name, held as its uncompressed wire form (length-prefixed labels and the zero root label),
/// case preserved. Always valid: labels of 1...63 bytes, at most 255 bytes in all. Equality and hashing
/// are case-insensitive for ASCII letters (RFC 4343).
public struct DNSName: Sendable, CustomStringConvertible {
    /// Most compression pointers followed while decoding one name. Real compressors produce one pointer,
    /// rarely a short chain; anything longer is an attack on the decoder's time.
    public static let maxPointers = 16

    /// Longest name in wire form (RFC 1035 section 2.3.4).
    public static let maxWireLength = 255

    /// The uncompressed wire form, ending with the zero root label.
    public let wireBytes: [UInt8]

    /// The root name ".".
    public static let root = DNSName(validatedWire: [0])

    init(validatedWire: [UInt8]) {
        self.wireBytes = validatedWire
    }

    /// Parses presentation text: dot-separated labels, an optional trailing dot, `\X` and `\DDD`
    /// escapes. "" and "." are the root. Throws with the character offset of the problem.
    public init(_ text: String) throws(DNSParseError) {
        let chars = Array(text.utf8)
        if chars.isEmpty || chars == [UInt8(ascii: ".")] {
            self = .root
            return
        }
        var wire: [UInt8] = []
        var label: [UInt8] = []
        var index = 0
        func finishLabel(at offset: Int) throws(DNSParseError) {
            guard !label.isEmpty else { throw DNSParseError(.emptyLabel, at: offset) }
            guard label.count <= 63 else { throw DNSParseError(.labelTooLong, at: offset) }
            guard wire.count + 1 + label.count + 1 <= DNSName.maxWireLength else {
                throw DNSParseError(.nameTooLong, at: offset)
            }
            wire.append(UInt8(label.count))
            wire.append(contentsOf: label)
            label.removeAll(keepingCapacity: true)
        }
        while index < chars.count {
            let c = chars[index]
            if c == UInt8(ascii: ".") {
                try finishLabel(at: index)
                index += 1
                continue
            }
            if c == UInt8(ascii: "\\") {
                guard index + 1 < chars.count else { throw DNSParseError(.invalidEscape, at: index) }
                let next = chars[index + 1]
                if next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9") {
                    guard index + 3 < chars.count else { throw DNSParseError(.invalidEscape, at: index) }
                    var value = 0
                    for d in chars[(index + 1)...(index + 3)] {
                        guard d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else {
                            throw DNSParseError(.invalidEscape, at: index)
                        }
                        value = value * 10 + Int(d - UInt8(ascii: "0"))
                    }
                    guard value <= 255 else { throw DNSParseError(.invalidEscape, at: index) }
                    label.append(UInt8(value))
                    index += 4
                } else {
                    label.append(next)
                    index += 2
                }
                continue
            }
            label.append(c)
            index += 1
        }
        // A trailing dot leaves an empty final label, which is the root and fine.
        if !label.isEmpty || chars.last != UInt8(ascii: ".") {
            try finishLabel(at: chars.count)
        }
        wire.append(0)
        self.wireBytes = wire
    }

    /// Decodes a possibly compressed name starting at `start` in `message`. Returns the name and the
    /// offset just after it in the original byte stream (after the first pointer, if any).
    ///
    /// Pointers must point strictly before the labels they were reached from (the start of the name, or
    /// the previous pointer's target). That rules out loops and self-pointers by construction, keeps
    /// decoding linear, and accepts everything a real compressor writes, since a suffix can only be
    /// referenced after it was written.
    public static func decode(
        from message: [UInt8], at start: Int, minimumPointerTarget: Int = 12
    ) throws(DNSParseError) -> (name: DNSName, end: Int) {
        var wire: [UInt8] = []
        wire.reserveCapacity(32)
        var position = start
        var runStart = start
        var endAfterName: Int? = nil
        var pointers = 0
        while true {
            guard position >= 0, position < message.count else { throw DNSParseError(.truncated, at: position) }
            let length = message[position]
            switch length >> 6 {
            case 0:
                if length == 0 {
                    wire.append(0)
                    return (DNSName(validatedWire: wire), endAfterName ?? position + 1)
                }
                let count = Int(length)
                guard position + 1 + count <= message.count else { throw DNSParseError(.truncated, at: position) }
                // Leave room for the root label that must still follow.
                guard wire.count + 1 + count + 1 <= maxWireLength else {
                    throw DNSParseError(.nameTooLong, at: position)
                }
                wire.append(length)
                wire.append(contentsOf: message[(position + 1)..<(position + 1 + count)])
                position += 1 + count
            case 3:
                guard position + 1 < message.count else { throw DNSParseError(.truncated, at: position) }
                let target = Int(length & 0x3F) << 8 | Int(message[position + 1])
                if endAfterName == nil { endAfterName = position + 2 }
                pointers += 1
                guard pointers <= maxPointers else { throw DNSParseError(.tooManyPointers, at: position) }
                guard target >= minimumPointerTarget, target < message.count else {
                    throw DNSParseError(.pointerOutOfBounds, at: position)
                }
                guard target < position else { throw DNSParseError(.forwardPointer, at: position) }
                guard target < runStart else { throw DNSParseError(.pointerLoop, at: position) }
                runStart = target
                position = target
            default:
                throw DNSParseError(.unsupportedLabelType, at: position)
            }
        }
    }

    /// Whether this is the root name.
    public var isRoot: Bool { wireBytes.count == 1 }

    /// The labels, in order from the leftmost, case preserved.
    public var labels: [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var index = 0
        while index < wireBytes.count, wireBytes[index] != 0 {
            let count = Int(wireBytes[index])
            result.append(wireBytes[(index + 1)..<(index + 1 + count)])
            index += 1 + count
        }
        return result
    }

    /// The wire form with ASCII letters folded to lower case; the key for comparison and hashing.
    /// Folding the length bytes too is harmless: they are at most 63, below "A".
    public var lowercasedWire: [UInt8] {
        wireBytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
    }

    /// Lower-case presentation form without the trailing dot ("." for the root), the form policy
    /// patterns match. Bytes that would be ambiguous or unprintable are escaped (`\.`, `\\`, `\DDD`),
    /// so two different names never print the same.
    public var text: String {
        Self.text(ofNameIn: wireBytes, at: 0) ?? "."  // a DNSName's wire form is always plain labels
    }

    /// `text` of the name at `offset` of `message` when it is written out in plain labels (a question's
    /// name: nothing precedes it that a pointer could reach), straight from the message's bytes into the
    /// string's storage: no DNSName, no label array, no intermediate buffer (every query's name is
    /// printed for the policy). Nil for a compression pointer or a name running off the end.
    public static func text(ofNameIn message: [UInt8], at offset: Int) -> String? {
        var end = offset
        while end < message.count, message[end] != 0 {
            guard message[end] & 0xC0 == 0 else { return nil }
            end += 1 + Int(message[end])
        }
        guard end < message.count else { return nil }
        if end == offset { return "." }
        let wire = message
        // At most 4 characters per byte (`\DDD`).
        return String(unsafeUninitializedCapacity: (end - offset) * 4) { out in
            var written = 0
            var index = offset
            while wire[index] != 0 {
                let count = Int(wire[index])
                if index > offset {
                    out[written] = UInt8(ascii: ".")
                    written += 1
                }
                for position in (index + 1)..<(index + 1 + count) {
                    let byte = wire[position]
                    let c = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                    switch c {
                    case UInt8(ascii: "."), UInt8(ascii: "\\"):
                        out[written] = UInt8(ascii: "\\")
                        out[written + 1] = c
                        written += 2
                    // Unprintable bytes and the master-file special characters (RFC 1035 section 5.1) are
                    // escaped numerically.
                    case 0x00...0x20, 0x7F...0xFF, UInt8(ascii: "\""), UInt8(ascii: "("), UInt8(ascii: ")"),
                         UInt8(ascii: ";"), UInt8(ascii: "@"), UInt8(ascii: "$"):
                        out[written] = UInt8(ascii: "\\")
                        out[written + 1] = UInt8(ascii: "0") + c / 100
                        out[written + 2] = UInt8(ascii: "0") + c / 10 % 10
                        out[written + 3] = UInt8(ascii: "0") + c % 10
                        written += 4
                    default:
                        out[written] = c
                        written += 1
                    }
                }
                index += 1 + count
            }
            return written
        }
    }

    /// Same as `text`.
    public var description: String { text }

    /// Whether this name equals `other` or lies below it (case-insensitive, label-aligned).
    public func isSubdomain(of other: DNSName) -> Bool {
        let mine = labels
        let theirs = other.labels
        guard theirs.count <= mine.count else { return false }
        let offset = mine.count - theirs.count
        for i in 0..<theirs.count where !DNSName.labelsEqual(mine[offset + i], theirs[i]) {
            return false
        }
        return true
    }

    static func labelsEqual(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            let fx = x >= 0x41 && x <= 0x5A ? x | 0x20 : x
            let fy = y >= 0x41 && y <= 0x5A ? y | 0x20 : y
            if fx != fy { return false }
        }
        return true
    }
}

extension DNSName: Hashable {
    /// Case-insensitive equality (RFC 4343).
    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        guard lhs.wireBytes.count == rhs.wireBytes.count else { return false }
        for (x, y) in zip(lhs.wireBytes, rhs.wireBytes) where x != y {
            let fx = x >= 0x41 && x <= 0x5A ? x | 0x20 : x
            let fy = y >= 0x41 && y <= 0x5A ? y | 0x20 : y
            if fx != fy { return false }
        }
        return true
    }

    /// Hashes the case-folded wire form, consistent with `==`, eight bytes to a word (a combine per byte
    /// was the cache's largest cost per stored answer).
    public func hash(into hasher: inout Hasher) {
        var word: UInt64 = 0
        var shift: UInt64 = 0
        for byte in wireBytes {
            word |= UInt64(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) << shift
            shift += 8
            if shift == 64 {
                hasher.combine(word)
                word = 0
                shift = 0
            }
        }
        hasher.combine(word)
        hasher.combine(wireBytes.count)
    }
}
