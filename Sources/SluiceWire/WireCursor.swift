// The one bounds-checked reader every SluiceWire parser is built on: a window [position, end) over a
// byte array. Every read either succeeds entirely or returns nil and leaves the cursor unchanged, so
// parsers turn "not enough bytes" into their own failure reason and can never index out of range.

/// A forward-only, bounds-checked reader over a window of a byte array. Reads never trap: they
/// return nil when the window holds too few bytes. Big-endian (network order) throughout.
struct WireCursor {
    /// The whole underlying buffer; offsets are always indices into it.
    let bytes: [UInt8]
    /// The index of the next byte to read.
    private(set) var position: Int
    /// One past the last readable index of this window.
    let end: Int

    /// A cursor over `bytes[start..<end]`; the window is clamped to the array so a bad caller bound
    /// cannot create an out-of-range cursor.
    init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        let upper = min(max(end ?? bytes.count, 0), bytes.count)
        self.end = upper
        self.position = min(max(start, 0), upper)
    }

    /// Bytes left in the window.
    var remaining: Int { end - position }

    /// Whether the window has been consumed completely.
    var isAtEnd: Bool { position >= end }

    mutating func readU8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readU16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    mutating func readU24() -> Int? {
        guard remaining >= 3 else { return nil }
        defer { position += 3 }
        return Int(bytes[position]) << 16 | Int(bytes[position + 1]) << 8 | Int(bytes[position + 2])
    }

    mutating func readU32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        defer { position += 4 }
        return UInt32(bytes[position]) << 24 | UInt32(bytes[position + 1]) << 16
            | UInt32(bytes[position + 2]) << 8 | UInt32(bytes[position + 3])
    }

    /// Consumes `count` bytes and returns their index range in `bytes`.
    mutating func readRange(_ count: Int) -> Range<Int>? {
        guard count >= 0, remaining >= count else { return nil }
        defer { position += count }
        return position..<(position + count)
    }

    /// Consumes `count` bytes and returns a copy of them.
    mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard let range = readRange(count) else { return nil }
        return Array(bytes[range])
    }

    /// Consumes `count` bytes and returns a cursor limited to exactly them: the way length-prefixed
    /// vectors are read, so an inner parser cannot run past its own length field.
    mutating func readWindow(_ count: Int) -> WireCursor? {
        guard let range = readRange(count) else { return nil }
        return WireCursor(bytes, from: range.lowerBound, to: range.upperBound)
    }

    /// Reads a vector with a `prefixBytes`-long (1, 2 or 3) big-endian length prefix.
    mutating func readVector(prefixBytes: Int) -> WireCursor? {
        let saved = self
        let length: Int?
        switch prefixBytes {
        case 1: length = readU8().map(Int.init)
        case 2: length = readU16().map(Int.init)
        default: length = readU24()
        }
        guard let length, let window = readWindow(length) else {
            self = saved
            return nil
        }
        return window
    }
}

/// Appends big-endian integers to a byte array: the writing half of `WireCursor`.
extension Array where Element == UInt8 {
    mutating func appendU16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    mutating func appendU32(_ value: UInt32) {
        appendU16(UInt16(truncatingIfNeeded: value >> 16))
        appendU16(UInt16(truncatingIfNeeded: value))
    }

    /// Overwrites two bytes at `index` with `value`; used to back-patch length and count fields.
    mutating func setU16(_ value: UInt16, at index: Int) {
        self[index] = UInt8(truncatingIfNeeded: value >> 8)
        self[index + 1] = UInt8(truncatingIfNeeded: value)
    }
}
