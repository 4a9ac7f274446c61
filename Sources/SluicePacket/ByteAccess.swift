// Big-endian loads and stores at any byte offset of a frame. Network headers are not aligned in
// a frame (a 14-byte Ethernet header puts IPv4 at offset 14, a VLAN tag at 18), so every access
// goes through `loadUnaligned` / `storeBytes`, which make no alignment assumption. These helpers
// do not check bounds: the parser checks lengths once per header before it reads a field.

extension UnsafeRawBufferPointer {
    /// The byte at `offset`. The caller has checked that `offset < count`.
    @inlinable @inline(__always)
    public func byte(at offset: Int) -> UInt8 {
        loadUnaligned(fromByteOffset: offset, as: UInt8.self)
    }

    /// The big-endian 16-bit field at `offset`, in host order. The caller has checked the bounds.
    @inlinable @inline(__always)
    public func bigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// The big-endian 32-bit field at `offset`, in host order. The caller has checked the bounds.
    @inlinable @inline(__always)
    public func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// The big-endian 128-bit field at `offset` (an IPv6 address), in host order.
    @inlinable @inline(__always)
    public func bigEndianUInt128(at offset: Int) -> UInt128 {
        let high = UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        let low = UInt64(bigEndian: loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
        return UInt128(high) << 64 | UInt128(low)
    }
}

extension UnsafeMutableRawPointer {
    /// Stores one byte at `offset`.
    @inlinable @inline(__always)
    public func storeByte(_ value: UInt8, at offset: Int) {
        storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
    }

    /// Stores `value` big-endian at `offset`, with no alignment assumption.
    @inlinable @inline(__always)
    public func storeBigEndian(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// Stores `value` big-endian at `offset`, with no alignment assumption.
    @inlinable @inline(__always)
    public func storeBigEndian(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// Stores `value` big-endian at `offset` (an IPv6 address), with no alignment assumption.
    @inlinable @inline(__always)
    public func storeBigEndian(_ value: UInt128, at offset: Int) {
        storeBytes(of: UInt64(truncatingIfNeeded: value >> 64).bigEndian, toByteOffset: offset, as: UInt64.self)
        storeBytes(of: UInt64(truncatingIfNeeded: value).bigEndian, toByteOffset: offset + 8, as: UInt64.self)
    }

    /// The big-endian 16-bit field at `offset`, in host order.
    @inlinable @inline(__always)
    public func loadBigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
}
