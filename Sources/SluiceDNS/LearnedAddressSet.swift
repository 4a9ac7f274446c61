// Addresses the DNS proxy learned from allowed answers, bound to the (source group, rule) that allowed
// the name, for the answer's TTL plus a grace period; what hostname rules match packets against.
//
//   DNS proxy (writers, serialised by a mutex)            packet workers (readers, no locks)
//   learn / withdraw / expire / evict                     contains(group, rule, address)
//     │ bookkeeping in LearnedBindings (linked slots)       │ readers += 1
//     ▼                                                     │ table = current            (one atomic load)
//   current table ── in place: new keys, expiry updates     │ probe; state > now?        (coarse clock)
//     └─ 3/8 full or mostly dead: fill a new table beside   │ readers -= 1
//        it, 64 key slots per write (changes go to both),   │
//        publish it with one atomic store, retire the old ──┘
//   retired tables are freed once the writer sees readers == 0 after the swap (one is kept, zeroed, to be
//   the next table of its size)
//
// Reclamation: a reader increments `readers` before loading the table pointer and decrements it after
// its last read, all sequentially consistent. If the writer, after publishing a new table, reads zero,
// every reader that could have loaded an old table has finished with it, and every later reader loads
// the new one; so retired tables are freed then, and kept (counted) until then. New tables are rare (the
// table doubles, or drops dead slots), so a retired table rarely waits long. The counter is one shared
// cache line written twice per lookup; lookups happen when a flow is classified, not per packet, which is
// why this was preferred to per-worker epoch slots. Nothing on the read path allocates or locks.
import Atomics
import Glibc
import SluicePolicy
import Synchronization

/// Bounds and timing of the learned set (docs/dns.md lists the defaults and why).
public struct LearnedAddressConfiguration: Sendable, Equatable {
    /// Added to every record's TTL: clients connect a moment after resolving, and caches in the client
    /// may keep an answer a little past its TTL.
    public var graceSeconds: UInt32 = 30
    /// TTLs below this count as this (a TTL of 0 would otherwise teach nothing usable).
    public var minimumTTLSeconds: UInt32 = 5
    /// TTLs above this count as this, so a huge TTL cannot pin an address for days.
    public var maximumTTLSeconds: UInt32 = 86_400
    /// Most (hostname, rule, address) bindings held; the least recently learned is evicted beyond it.
    public var maxEntries: Int = 65_536

    /// The defaults.
    public init() {}
}

/// One hostname's learned addresses under one rule, for `/api/v1/dns-cache`.
public struct LearnedAddressEntry: Sendable, Equatable {
    /// The name as queried, lower case without the trailing dot.
    public var hostname: String
    /// Document index of the source group and its id.
    public var group: Int
    public var groupID: String
    /// Document index of the rule within its group and its id.
    public var rule: Int
    public var ruleID: String
    /// Addresses with the monotonic millisecond (CoarseClock) at which each expires.
    public var addresses: [(address: IPAddress, expiresAt: UInt64)]

    public static func == (lhs: LearnedAddressEntry, rhs: LearnedAddressEntry) -> Bool {
        lhs.hostname == rhs.hostname && lhs.group == rhs.group && lhs.rule == rhs.rule && lhs.groupID == rhs.groupID
            && lhs.ruleID == rhs.ruleID && lhs.addresses.map(\.address) == rhs.addresses.map(\.address)
            && lhs.addresses.map(\.expiresAt) == rhs.addresses.map(\.expiresAt)
    }
}

/// Counters of the learned set.
public struct LearnedAddressStatistics: Sendable, Equatable {
    /// Bindings held now (expired ones until the next purge).
    public var entries: Int
    /// Bindings evicted because the set was full.
    public var evicted: UInt64
    /// Bindings removed because a later query for the name was denied.
    public var withdrawn: UInt64
    /// Bindings purged after expiry.
    public var expired: UInt64
    /// Tables built (the first included).
    public var tablesBuilt: UInt64
    /// Of those, built in a retired table's zeroed mapping instead of a fresh one.
    public var tablesRecycled: UInt64
    /// Retired tables still waiting for readers to leave.
    public var retiredTables: Int
}

/// The read side, handed to packet workers. A trivially copyable view of the set's atomics: any number
/// of threads may call `contains` at once, without locks or allocation. Valid while its set lives.
public struct LearnedAddressReader: LearnedAddressLookup, @unchecked Sendable {
    let current: UnsafeAtomic<UnsafeMutableRawPointer>
    let readers: UnsafeAtomic<Int>
    let clockOffset: UnsafeAtomic<UInt64>

    /// Whether `address` is learned for the rule (document indices) and not expired.
    @inline(__always)
    public func contains(group: Int, rule: Int, address: IPAddress) -> Bool {
        let key = LearnedKey(group: Int32(truncatingIfNeeded: group), rule: Int32(truncatingIfNeeded: rule),
                             address: address)
        let now = CoarseClock.nowMilliseconds() &+ clockOffset.load(ordering: .relaxed)
        readers.wrappingIncrement(ordering: .sequentiallyConsistent)
        let table = LearnedAddressTable(current.load(ordering: .sequentiallyConsistent))
        let found = table.contains(key, now: now)
        readers.wrappingDecrement(ordering: .sequentiallyConsistent)
        return found
    }

    /// The set's clock (monotonic milliseconds, including any test offset).
    public func now() -> UInt64 {
        CoarseClock.nowMilliseconds() &+ clockOffset.load(ordering: .relaxed)
    }
}

/// The learned address set. Writers (`learn`, `withdraw`, `purgeExpired`, `rebind`, `removeAll`) may be
/// called from any thread; they serialise on an internal mutex. `contains` and `reader` are lock-free.
public final class LearnedAddressSet: LearnedAddressLookup, @unchecked Sendable {
    /// Bounds and timing.
    public let configuration: LearnedAddressConfiguration
    /// The lock-free read side.
    public let reader: LearnedAddressReader
    private let state: Mutex<WriterState>

    struct WriterState: ~Copyable {
        var table: LearnedAddressTable
        var retired: [LearnedAddressTable] = []
        /// Retired tables no reader can hold any more, being unmapped a piece per write (`reclaim`):
        /// address, size, bytes unmapped so far.
        var unmapping: [(base: UnsafeMutableRawPointer, bytes: Int, done: Int)] = []
        /// One retired table no reader can hold any more, kept to be the next table of its capacity and
        /// zeroed a piece per write meanwhile: its base, capacity and size, and the bytes zeroed so far. A
        /// fresh mapping's pages fault in as the migration first writes them, 2,560 faults of a few
        /// microseconds for 262,144 slots, bunched on its first writes (0.3–0.5 ms each); zeroing pages
        /// that are already mapped costs a tenth of that. Memory: at most one table more than before.
        var spare: (base: UnsafeMutableRawPointer, capacity: Int, bytes: Int, cleared: Int)?
        var bindings = LearnedBindings()
        /// The table being filled beside the published one, and the next key slot to copy into it
        /// (`maintainTable`).
        var next: (table: LearnedAddressTable, cursor: Int)?
        var statistics = LearnedAddressStatistics(entries: 0, evicted: 0, withdrawn: 0, expired: 0, tablesBuilt: 1,
                                                  tablesRecycled: 0, retiredTables: 0)
        var lastPurge: UInt64 = 0

        init(table: LearnedAddressTable) {
            self.table = table
        }
    }

    /// An empty set.
    public init(configuration: LearnedAddressConfiguration = LearnedAddressConfiguration()) {
        self.configuration = configuration
        let table = LearnedAddressTable.allocate(capacity: 64)
        reader = LearnedAddressReader(current: .create(table.base), readers: .create(0), clockOffset: .create(0))
        state = Mutex(WriterState(table: table))
    }

    deinit {
        state.withLock { state in
            state.table.deallocate()
            state.next?.table.deallocate()
            for table in state.retired { table.deallocate() }
            for (base, bytes, done) in state.unmapping { munmap(base + done, bytes - done) }
            if let spare = state.spare { munmap(spare.base, spare.bytes) }
        }
        reader.current.destroy()
        reader.readers.destroy()
        reader.clockOffset.destroy()
    }

    /// Whether `address` is learned for the rule (document indices) and not expired. Lock-free.
    @inline(__always)
    public func contains(group: Int, rule: Int, address: IPAddress) -> Bool {
        reader.contains(group: group, rule: rule, address: address)
    }

    /// The set's clock in monotonic milliseconds.
    public func now() -> UInt64 { reader.now() }

    /// Moves the set's clock forward (tests: expiry without waiting).
    public func advanceClock(byMilliseconds milliseconds: UInt64) {
        reader.clockOffset.wrappingIncrement(by: milliseconds, ordering: .relaxed)
    }

    /// How long an address from a record with `ttl` stays learned, in milliseconds.
    public func lifetimeMilliseconds(ttl: UInt32) -> UInt64 {
        let clamped = min(max(ttl, configuration.minimumTTLSeconds), configuration.maximumTTLSeconds)
        return (UInt64(clamped) + UInt64(configuration.graceSeconds)) * 1000
    }

    /// A binding is refreshed only when an answer extends it by more than this (docs/dns.md, Learning).
    static let refreshSlackMilliseconds: UInt64 = 1_000

    /// Binds `addresses` (each with its chain TTL) of `hostname` to the rule that allowed it. An address
    /// already bound keeps the later of its old and new expiry.
    public func learn(hostname: String, group: Int, rule: Int, groupID: String, ruleID: String,
                      addresses: [(address: IPAddress, ttl: UInt32)]) {
        learn(hostname: Prehashed(hostname), group: group, rule: rule, groupID: groupID, ruleID: ruleID,
              addresses: addresses)
    }

    /// Starts loading what learning `hostname` will look up first, its index bucket (a cache miss in a
    /// full set of random names): the proxy asks before its other work on an answer, so the lookup
    /// finds the line loaded.
    func prefetch(hostname: Prehashed<String>) {
        state.withLock { $0.bindings.prefetch(hostname) }
    }

    /// `learn` with the hostname's hash taken already.
    func learn(hostname: Prehashed<String>, group: Int, rule: Int, groupID: String, ruleID: String,
               addresses: [(address: IPAddress, ttl: UInt32)]) {
        guard !addresses.isEmpty else { return }
        let now = now()
        let (group, rule) = (Int32(truncatingIfNeeded: group), Int32(truncatingIfNeeded: rule))
        state.withLock { state in
            if state.bindings.count + addresses.count > configuration.maxEntries, now &- state.lastPurge >= 1000 {
                purge(&state, now: now)
            }
            let label = state.bindings.label(groupID: groupID, ruleID: ruleID, group: group, rule: rule)
            let name = state.bindings.nameSlot(hostname)
            for (address, ttl) in addresses {
                let key = LearnedKey(group: group, rule: rule, address: address)
                if let change = state.bindings.bind(name, key, expiry: now + lifetimeMilliseconds(ttl: ttl), label: label,
                                                    slack: Self.refreshSlackMilliseconds) {
                    publish(&state, change, now: now)
                }
            }
            // Evicting after the loop: the name's slot stays valid through it.
            while state.bindings.count > configuration.maxEntries, let oldest = state.bindings.popOldest() {
                if let change = state.bindings.remove(oldest) { publish(&state, change, now: now) }
                state.statistics.evicted += 1
            }
            if state.bindings.count >= configuration.maxEntries { state.bindings.prefetchEvictions() }
            state.bindings.compactOrder()
            maintainTable(&state, now: now)
            reclaim(&state)
        }
    }

    /// Removes the bindings of `hostname` (a later query for it was denied): those under rules of `group`
    /// (document index), or under every group when nil. Returns how many were removed.
    @discardableResult
    public func withdraw(hostname: String, group: Int? = nil) -> Int {
        let now = now()
        return state.withLock { state in
            let removed = state.bindings.bindings(of: hostname, group: group.map { Int32(truncatingIfNeeded: $0) })
            for index in removed {
                if let change = state.bindings.remove(index) { publish(&state, change, now: now) }
            }
            state.statistics.withdrawn += UInt64(removed.count)
            maintainTable(&state, now: now)
            reclaim(&state)
            return removed.count
        }
    }

    /// Drops expired bindings and, when most of the table is dead, compacts it. The proxy calls this
    /// every few seconds; correctness never depends on it (readers check expiry themselves).
    public func purgeExpired() {
        let now = now()
        state.withLock { state in purge(&state, now: now) }
    }

    /// Re-binds every entry after a policy change: `transform` gets (hostname, group id, rule id) and
    /// returns the rule's document indices in the new policy, or nil when the new policy no longer allows
    /// the name by that rule (the binding is dropped). Builds a fresh table.
    public func rebind(_ transform: (String, String, String) -> (group: Int, rule: Int)?) {
        let now = now()
        state.withLock { state in
            var bindings = LearnedBindings()
            for (name, key, expiry, label) in state.bindings.all() where expiry > now {
                guard let (group, rule) = transform(name, label.groupID, label.ruleID) else { continue }
                let (newGroup, newRule) = (Int32(truncatingIfNeeded: group), Int32(truncatingIfNeeded: rule))
                let newLabel = bindings.label(groupID: label.groupID, ruleID: label.ruleID, group: newGroup, rule: newRule)
                _ = bindings.bind(bindings.nameSlot(Prehashed(name)),
                                  LearnedKey(group: newGroup, rule: newRule, address: key.ipAddress),
                                  expiry: expiry, label: newLabel, slack: 0)
            }
            state.bindings = bindings
            rebuild(&state, now: now)
        }
    }

    /// Forgets everything (no active policy).
    public func removeAll() {
        rebind { _, _, _ in nil }
    }

    /// Live bindings grouped by hostname and rule, sorted by hostname.
    public func entries() -> [LearnedAddressEntry] {
        let now = now()
        let all = state.withLock { state in state.bindings.all() }
        var byRule: [String: [Int64: LearnedAddressEntry]] = [:]
        for (name, key, expiry, label) in all where expiry > now {
            let rule = Int64(key.group) << 32 | Int64(UInt32(bitPattern: key.rule))
            byRule[name, default: [:]][rule, default: LearnedAddressEntry(
                hostname: name, group: Int(key.group), groupID: label.groupID, rule: Int(key.rule), ruleID: label.ruleID,
                addresses: [])].addresses.append((key.ipAddress, expiry))
        }
        var result: [LearnedAddressEntry] = []
        for entries in byRule.values {
            for var entry in entries.values {
                entry.addresses.sort { $0.address < $1.address }
                result.append(entry)
            }
        }
        return result.sorted { ($0.hostname, $0.group, $0.rule) < ($1.hostname, $1.group, $1.rule) }
    }

    /// Current counters.
    public func statistics() -> LearnedAddressStatistics {
        state.withLock { state in
            var statistics = state.statistics
            statistics.entries = state.bindings.count
            statistics.retiredTables = state.retired.count
            return statistics
        }
    }

    // MARK: - Writer internals (called with the mutex held)

    /// Writes a key's new effective expiry (the latest among the names vouching for it) into the table,
    /// and into the table being filled, if any.
    private func publish(_ state: inout WriterState, _ change: LearnedBindings.Change, now: UInt64) {
        if let next = state.next, !next.table.set(change.key, state: change.latest) {
            // The new table is sized for the keys plus more than a migration's worth of new ones; should it
            // still fill, it is dropped (never published) and rebuilt at once below if need be.
            next.table.deallocate()
            state.next = nil
        }
        if !state.table.set(change.key, state: change.latest) {
            if state.next != nil { migrate(&state, now: now, steps: Int.max) } else { rebuild(&state, now: now) }
            _ = state.table.set(change.key, state: change.latest)
        }
    }

    /// Key slots copied into the next table per write: a migration of 65,536 keys spreads over 1,024
    /// writes. A rebuild at once held the lock for 15–80 ms; 256 slots per write still took up to 1.6 ms
    /// for the first writes, whose copies each fault in a fresh page of the new table (measured with
    /// `dns-state-bench --stalls --only cache-on-own`, every address new).
    static let migrationSteps = 64

    /// Starts a migration to a fresh table when the published one is three-eighths full (it refuses
    /// keys past half, so an eighth is left for what arrives meanwhile) or mostly dead slots, and moves
    /// a migration on by `migrationSteps` key slots. Readers keep probing the published table throughout;
    /// every change is written to both, and the new one is published when the last slot is copied.
    private func maintainTable(_ state: inout WriterState, now: UInt64) {
        if state.next == nil {
            let (occupied, capacity) = (state.table.occupied, state.table.capacity)
            let crowded = occupied * 8 >= capacity * 3
            let mostlyDead = occupied > 64 && state.bindings.keyCount * 4 < occupied
            guard crowded || mostlyDead else { return }
            let table = newTable(&state)
            state.next = (table, 0)
        }
        migrate(&state, now: now, steps: Self.migrationSteps)
    }

    /// Copies up to `steps` key slots into the next table; publishes it after the last one.
    private func migrate(_ state: inout WriterState, now: UInt64, steps: Int) {
        guard let (table, start) = state.next else { return }
        let slots = state.bindings.keySlotCount
        let end = slots - start <= steps ? slots : start + steps
        for index in start..<end {
            guard let (key, latest) = state.bindings.key(at: index), latest > now else { continue }
            if !table.set(key, state: latest) {
                // More keys arrived than it was sized for: a table sized for them now, filled at once (it
                // takes the live keys with room to spare, so this cannot recur).
                table.deallocate()
                state.next = nil
                rebuild(&state, now: now)
                return
            }
        }
        guard end == slots else {
            state.next = (table, end)
            return
        }
        state.next = nil
        install(&state, table)
    }

    private func purge(_ state: inout WriterState, now: UInt64) {
        state.lastPurge = now
        let expired = state.bindings.expired(now: now)
        for index in expired {
            if let change = state.bindings.remove(index) { publish(&state, change, now: now) }
        }
        state.statistics.expired += UInt64(expired.count)
        // A table mostly of dead slots is compacted (misses then probe short chains again).
        maintainTable(&state, now: now)
        state.bindings.compactOrder()
        reclaim(&state)
    }

    /// A table for the live keys with room to grow: four slots per key (the table refuses keys past half
    /// and starts its successor at three-eighths), and at least 1,024, so a migration of a small set is
    /// not overtaken by the keys that arrive while it runs. Built in the spare table when it has that
    /// capacity (its zeroing finished now if need be), else in a fresh mapping.
    private func newTable(_ state: inout WriterState) -> LearnedAddressTable {
        let capacity = LearnedAddressTable.capacity(for: max(1024, (state.bindings.keyCount + 1) * 4))
        if let spare = state.spare {
            state.spare = nil
            if spare.capacity == capacity {
                (spare.base + spare.cleared).initializeMemory(as: UInt8.self, repeating: 0,
                                                              count: spare.bytes - spare.cleared)
                state.statistics.tablesRecycled += 1
                return LearnedAddressTable.reusing(spare.base, capacity: capacity)
            }
            state.unmapping.append((spare.base, spare.bytes, 0))
        }
        return LearnedAddressTable.allocate(capacity: capacity)
    }

    /// Replaces the table at once (a policy change; or the fallback when a migration could not keep up):
    /// a migration finished in one go.
    private func rebuild(_ state: inout WriterState, now: UInt64) {
        state.next?.table.deallocate()
        let table = newTable(&state)
        state.next = (table, 0)
        migrate(&state, now: now, steps: Int.max)
    }

    /// Publishes `table` to readers and retires the one they used.
    private func install(_ state: inout WriterState, _ table: LearnedAddressTable) {
        reader.current.store(table.base, ordering: .sequentiallyConsistent)
        state.retired.append(state.table)
        state.table = table
        state.statistics.tablesBuilt += 1
        reclaim(&state)
    }

    /// Bytes of retired tables unmapped per write: unmapping a 10 MB table at once was a pause of
    /// 1–2.5 ms (`dns-state-bench --stalls --only cache-on-own`).
    static let unmapBytesPerWrite = 1 << 20

    /// Bytes of the spare table zeroed per write (about 10 µs; a 10 MB table is ready after 80 writes).
    static let clearBytesPerWrite = 128 << 10

    /// Once no reader can still hold a retired table (see the header comment), keeps one as the spare and
    /// hands the others over for unmapping; then zeroes `clearBytesPerWrite` of the spare and unmaps
    /// `unmapBytesPerWrite` of the others.
    private func reclaim(_ state: inout WriterState) {
        if !state.retired.isEmpty, reader.readers.load(ordering: .sequentiallyConsistent) == 0 {
            for table in state.retired {
                if state.spare == nil {
                    state.spare = (table.base, table.capacity, table.mappedBytes, 0)
                } else {
                    state.unmapping.append((table.base, table.mappedBytes, 0))
                }
            }
            state.retired.removeAll()
        }
        if let spare = state.spare, spare.cleared < spare.bytes {
            let piece = min(Self.clearBytesPerWrite, spare.bytes - spare.cleared)
            (spare.base + spare.cleared).initializeMemory(as: UInt8.self, repeating: 0, count: piece)
            state.spare?.cleared += piece
        }
        guard let (base, bytes, done) = state.unmapping.first else { return }
        let piece = min(Self.unmapBytesPerWrite, bytes - done)
        munmap(base + done, piece)
        if done + piece < bytes { state.unmapping[0].done = done + piece } else { state.unmapping.removeFirst() }
    }

    /// Retired tables not yet fully unmapped (tests).
    var tablesBeingUnmapped: Int { state.withLock { $0.unmapping.count } }
}
