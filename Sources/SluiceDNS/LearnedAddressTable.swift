// One published generation of the learned address set, as the packet hot path reads it: an
// open-addressing (linear probing) hash table in one raw allocation, keyed by (group, rule, address).
//
//   base ─► [ header: capacity | occupied ] [ keys: capacity × LearnedKey ] [ states: capacity × atomic u64 ]
//
// A slot's state word is its whole life: 0 empty (ends a probe), 1 dead (withdrawn or evicted; keeps the
// probe chain intact), >= 2 the coarse-clock millisecond at which the binding expires. The single writer
// (LearnedAddressSet, under its mutex) fills a key and then stores the state with release ordering, so a
// reader that loads a non-zero state with acquire ordering sees the whole key. Keys never change once
// published and a slot never becomes empty again, which is what lets readers probe without locks while
// the writer inserts and extends or withdraws expiries in place. Before the table fills past half (it
// refuses keys beyond that), the writer fills a fresh one and swaps it in (LearnedAddressSet.swift says
// how, and how the old one is reclaimed).
import Atomics
import Glibc
import SluicePolicy

/// A table key: an address bound to a rule (document indices of the policy). Also the writer's key in
/// LearnedBindings, hashed there by the same mix.
struct LearnedKey: Hashable {
    var address: UInt128
    var group: Int32
    var rule: Int32
    /// 4 or 6.
    var family: UInt8

    @inline(__always)
    init(group: Int32, rule: Int32, address: IPAddress) {
        self.group = group
        self.rule = rule
        switch address {
        case .v4(let value):
            self.address = UInt128(value)
            family = 4
        case .v6(let value):
            self.address = value
            family = 6
        }
    }

    /// The address as the policy reads it.
    var ipAddress: IPAddress { family == 4 ? .v4(UInt32(truncatingIfNeeded: address)) : .v6(address) }

    func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }

    /// A 64-bit mix of all fields (splitmix64 finaliser over each word): cheap and well spread.
    @inline(__always)
    var hash: UInt64 {
        @inline(__always) func mix(_ value: UInt64) -> UInt64 {
            var z = value &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let low = UInt64(truncatingIfNeeded: address)
        let high = UInt64(truncatingIfNeeded: address >> 64)
        let tag = UInt64(UInt32(bitPattern: group)) << 32 | UInt64(UInt32(bitPattern: rule))
        return mix(mix(mix(low) ^ high) ^ tag ^ UInt64(family) << 61)
    }
}

/// State words (see the header comment).
enum LearnedSlotState {
    static let empty: UInt64 = 0
    static let dead: UInt64 = 1
    /// The smallest value that means "live until then".
    static let firstExpiry: UInt64 = 2
}

/// A non-owning view of one table allocation. Trivially copyable, so the hot path passes it around
/// without reference counting. Readers may call `contains` from any thread while the table is published
/// (or retired but not reclaimed); every other method belongs to the writer.
struct LearnedAddressTable {
    private struct Header {
        var capacity: Int
        var occupied: Int
    }

    let base: UnsafeMutableRawPointer

    private static var keysOffset: Int { 64 }
    private var header: UnsafeMutablePointer<Header> { base.assumingMemoryBound(to: Header.self) }
    private var keys: UnsafeMutablePointer<LearnedKey> {
        (base + LearnedAddressTable.keysOffset).assumingMemoryBound(to: LearnedKey.self)
    }
    private var states: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage> {
        (base + LearnedAddressTable.keysOffset + capacity * MemoryLayout<LearnedKey>.stride)
            .assumingMemoryBound(to: UnsafeAtomic<UInt64>.Storage.self)
    }

    init(_ base: UnsafeMutableRawPointer) {
        self.base = base
    }

    /// Number of slots (a power of two).
    var capacity: Int { header.pointee.capacity }
    /// Slots ever used (live or dead); only the writer reads it.
    var occupied: Int { header.pointee.occupied }

    private static func byteCount(capacity: Int) -> Int {
        keysOffset + capacity * (MemoryLayout<LearnedKey>.stride + MemoryLayout<UInt64>.stride)
    }

    /// Allocates an empty table of `capacity` slots (rounded up to a power of two, at least 16). The memory
    /// is mapped, not allocated and cleared: an empty table is all zeros, and the kernel hands out zeroed
    /// pages as keys first land on them, so a table of megabytes costs no up-front clearing (it used to,
    /// inside the writer's lock) and its page faults spread over the migration that fills it.
    static func allocate(capacity requested: Int) -> LearnedAddressTable {
        let capacity = Self.capacity(for: requested)
        let mapped = mmap(nil, byteCount(capacity: capacity), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let base = mapped, base != MAP_FAILED else {
            fatalError("learned address table: cannot map \(byteCount(capacity: capacity)) bytes (errno \(errno))")
        }
        base.assumingMemoryBound(to: Header.self).pointee = Header(capacity: capacity, occupied: 0)
        return LearnedAddressTable(base)
    }

    /// The slots a table asked for `requested` gets: a power of two, at least 16.
    static func capacity(for requested: Int) -> Int {
        var capacity = 16
        while capacity < requested { capacity <<= 1 }
        return capacity
    }

    /// An empty table of `capacity` slots in the mapping at `base`, which held one of that capacity and
    /// has been zeroed since (a recycled table: LearnedAddressSet keeps one instead of mapping anew).
    static func reusing(_ base: UnsafeMutableRawPointer, capacity: Int) -> LearnedAddressTable {
        base.assumingMemoryBound(to: Header.self).pointee = Header(capacity: capacity, occupied: 0)
        return LearnedAddressTable(base)
    }

    /// The size of its mapping.
    var mappedBytes: Int { Self.byteCount(capacity: capacity) }

    func deallocate() {
        munmap(base, mappedBytes)
    }

    @inline(__always)
    private func state(_ index: Int) -> UnsafeAtomic<UInt64> {
        UnsafeAtomic(at: states + index)
    }

    /// Slot of `key`, or of the empty slot that ends its probe chain (nil only when the table is full).
    @inline(__always)
    private func probe(_ key: LearnedKey) -> (index: Int, found: Bool)? {
        let mask = capacity - 1
        var index = Int(truncatingIfNeeded: key.hash) & mask
        for _ in 0..<capacity {
            if state(index).load(ordering: .acquiring) == LearnedSlotState.empty { return (index, false) }
            if keys[index] == key { return (index, true) }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Whether `key` is present and expires after `now`. Lock-free and allocation-free.
    @inline(__always)
    func contains(_ key: LearnedKey, now: UInt64) -> Bool {
        guard let (index, found) = probe(key), found else { return false }
        return state(index).load(ordering: .relaxed) > now
    }

    /// The stored state of `key` (writer only).
    func expiry(of key: LearnedKey) -> UInt64? {
        guard let (index, found) = probe(key), found else { return nil }
        return state(index).load(ordering: .relaxed)
    }

    /// Sets `key`'s state, inserting the key when absent. Returns false when inserting would take the
    /// table over half full: the caller then rebuilds into a larger table. Writer only.
    func set(_ key: LearnedKey, state value: UInt64) -> Bool {
        guard let (index, found) = probe(key) else { return false }
        if found {
            state(index).store(value, ordering: .releasing)
            return true
        }
        if value < LearnedSlotState.firstExpiry { return true }  // nothing to withdraw
        guard (occupied + 1) * 2 <= capacity else { return false }
        keys[index] = key
        header.pointee.occupied += 1
        // Release: a reader that sees this state sees the key written just above.
        state(index).store(value, ordering: .releasing)
        return true
    }
}
