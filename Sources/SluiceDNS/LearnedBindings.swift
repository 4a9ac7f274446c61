// The learned set's bookkeeping on the writer's side: which hostnames vouch for which address keys, until
// when, and in which order the bindings were learned (for eviction). LearnedAddressSet keeps one under its
// mutex and copies each key's latest expiry into the table that packet workers probe.
//
//   nameIndex: hostname ─► name slot ─first─► binding ─nextInName─► binding ─► …   (the name's addresses)
//   keyIndex:  key      ─► key slot  ─first─► binding ─nextInKey──► binding ─► …   (the names vouching)
//   order:     (binding, sequence) in learning order; a refreshed or removed binding leaves a stale entry
//
// Names, keys and bindings are slots in arrays, reused through free lists and linked by Int32 indices
// (doubly, so a binding unlinks in O(1)). A write hashes the hostname once and the key once; evicting
// hashes nothing (names and keys keep their hashes for their SlotIndex). This replaced dictionaries
// nested under hostname strings (a dictionary per name and one per key), whose six string hashes and
// rehashing deletions per answer were half of a cache-on miss in dns-state-bench.
import CSluiceSystem
import NIOCore

/// One (hostname, address key) binding store with learning order. Not thread-safe: its owner serialises.
struct LearnedBindings {
    /// No slot: the end of a list.
    static let none: Int32 = -1

    struct Name {
        /// With its hash kept: removing it from the index needs the hash, not the text.
        var text: Prehashed<String>
        var first: Int32
    }

    struct Key {
        var key: LearnedKey
        var first: Int32
        /// The latest expiry among the key's bindings: what the table holds for it.
        var latest: UInt64
    }

    struct Binding {
        var name: Int32
        var key: Int32
        var label: Int32
        var expiry: UInt64
        /// When it was learned or last extended (learning order); 0 while the slot is free.
        var sequence: UInt64
        var nextInName: Int32
        var previousInName: Int32
        var nextInKey: Int32
        var previousInKey: Int32
    }

    /// The ids `/api/v1/dns-cache` shows for a binding: its rule's source group and the rule.
    struct Label: Equatable {
        var groupID: String
        var ruleID: String
    }

    /// A key whose latest expiry moved: the table must now hold `latest` for it (`LearnedSlotState.dead`
    /// once no name vouches for it).
    typealias Change = (key: LearnedKey, latest: UInt64)

    private var names: [Name] = []
    private var freeNames: [Int32] = []
    private var nameIndex = SlotIndex()
    private var keys: [Key] = []
    private var freeKeys: [Int32] = []
    private var keyIndex = SlotIndex()
    private var bindings: [Binding] = []
    private var freeBindings: [Int32] = []
    private var labels: [Label] = []
    private var labelIndex: [Int64: Int32] = [:]
    /// Learning order, oldest first. A ring: cutting consumed entries off the front of an array moved a
    /// megabyte every 65,536 evictions, and growing it faulted in fresh pages, pauses of milliseconds.
    private var order = CircularBuffer<(binding: Int32, sequence: UInt64)>()
    private var sequence: UInt64 = 0
    /// Bindings held.
    var count: Int { bindings.count - freeBindings.count }
    /// No binding expires before this. A lower bound: removals leave it low, `expired(now:)` makes it
    /// exact. A purge before it would find nothing, and a purge walks every binding.
    private(set) var earliestExpiry = UInt64.max

    /// Keys with at least one binding.
    var keyCount: Int { keyIndex.count }

    // MARK: - Writing

    /// The label slot for a rule's ids; `group` and `rule` are its document indices, which name one pair
    /// of ids while a policy is active, so the lookup is by integers (the strings are only compared).
    mutating func label(groupID: String, ruleID: String, group: Int32, rule: Int32) -> Int32 {
        let indices = Int64(group) << 32 | Int64(UInt32(bitPattern: rule))
        let label = Label(groupID: groupID, ruleID: ruleID)
        if let slot = labelIndex[indices], labels[Int(slot)] == label { return slot }
        labels.append(label)
        labelIndex[indices] = Int32(labels.count - 1)
        return Int32(labels.count - 1)
    }

    /// The slot of `name`, made when new; it is freed with the name's last binding, so bind to it at once.
    mutating func nameSlot(_ name: Prehashed<String>) -> Int32 {
        let found = nameIndex.find(name.hash) { names[Int($0)].text == name }
        if let slot = found.slot { return slot }
        let fresh = Name(text: name, first: Self.none)
        let slot = Self.place(fresh, in: &names, reusing: &freeNames)
        nameIndex.insert(slot, hash: name.hash, at: found.bucket)
        return slot
    }

    /// Binds name slot `name` to `key` until `expiry`, under `label`. A binding that exists already is
    /// extended, never shortened, and left alone when it would gain no more than `slack` milliseconds
    /// (the same answer again: sparing the order list and the table a write). Returns the key's change.
    mutating func bind(_ name: Int32, _ key: LearnedKey, expiry: UInt64, label: Int32, slack: UInt64) -> Change? {
        let keySlot = self.keySlot(key)
        // The name's existing binding on this key, if any: a name has few addresses, its list is short.
        var index = names[Int(name)].first
        while index != Self.none, bindings[Int(index)].key != keySlot { index = bindings[Int(index)].nextInName }
        sequence += 1
        if index != Self.none {
            guard bindings[Int(index)].expiry < expiry &- slack else { return nil }
            bindings[Int(index)].expiry = expiry
            bindings[Int(index)].sequence = sequence
        } else {
            index = insertBinding(Binding(
                name: name, key: keySlot, label: label, expiry: expiry, sequence: sequence,
                nextInName: names[Int(name)].first, previousInName: Self.none,
                nextInKey: keys[Int(keySlot)].first, previousInKey: Self.none))
            earliestExpiry = min(earliestExpiry, expiry)
        }
        order.append((index, sequence))
        guard expiry > keys[Int(keySlot)].latest else { return nil }
        keys[Int(keySlot)].latest = expiry
        return (key, expiry)
    }

    /// Removes binding `index`, freeing its name and key when they have no other. Returns the key's change.
    mutating func remove(_ index: Int32) -> Change? {
        let binding = bindings[Int(index)]
        bindings[Int(index)].sequence = 0
        freeBindings.append(index)

        let name = Int(binding.name)
        if binding.previousInName != Self.none {
            bindings[Int(binding.previousInName)].nextInName = binding.nextInName
        } else {
            names[name].first = binding.nextInName
        }
        if binding.nextInName != Self.none { bindings[Int(binding.nextInName)].previousInName = binding.previousInName }
        if names[name].first == Self.none {
            nameIndex.remove(binding.name, hash: names[name].text.hash)
            names[name].text = Prehashed("")
            freeNames.append(binding.name)
        }

        let keySlot = Int(binding.key)
        if binding.previousInKey != Self.none {
            bindings[Int(binding.previousInKey)].nextInKey = binding.nextInKey
        } else {
            keys[keySlot].first = binding.nextInKey
        }
        if binding.nextInKey != Self.none { bindings[Int(binding.nextInKey)].previousInKey = binding.previousInKey }
        let key = keys[keySlot].key
        if keys[keySlot].first == Self.none {
            keyIndex.remove(binding.key, hash: Self.hash(key))
            freeKeys.append(binding.key)
            return (key, LearnedSlotState.dead)
        }
        // Only removing the holder of the latest expiry costs a pass over the key's other names (evicting
        // the oldest binding rarely does: the newest usually holds it).
        guard binding.expiry >= keys[keySlot].latest else { return nil }
        var latest = LearnedSlotState.dead
        var next = keys[keySlot].first
        while next != Self.none {
            latest = max(latest, bindings[Int(next)].expiry)
            next = bindings[Int(next)].nextInKey
        }
        guard latest != keys[keySlot].latest else { return nil }
        keys[keySlot].latest = latest
        return (key, latest)
    }

    /// Takes the least recently learned binding off the learning order (nil: none held). The caller
    /// removes it.
    mutating func popOldest() -> Int32? {
        while let (index, sequence) = order.popFirst() {
            if bindings[Int(index)].sequence == sequence { return index }
        }
        return nil
    }

    /// Starts loading the index bucket where `name` is looked up (a hint, for a write soon).
    func prefetch(_ name: Prehashed<String>) {
        nameIndex.prefetch(name.hash)
    }

    /// Starts loading what evicting the next oldest bindings will touch, one stage per distance: the
    /// binding three ahead, the name slot of the one two ahead, the index bucket of the next one's name.
    /// Each stage reads only what an earlier call asked for, so at one eviction per write each eviction
    /// finds its lines loaded; otherwise each is a cache miss in turn (the oldest binding was last
    /// touched tens of thousands of writes ago), three in a row per eviction.
    func prefetchEvictions() {
        let ahead = min(order.count, 4)
        guard ahead > 1 else { return }
        bindings.withUnsafeBufferPointer { bindings in
            names.withUnsafeBufferPointer { names in
                for distance in 1..<ahead {
                    let (binding, sequence) = order[order.index(order.startIndex, offsetBy: distance)]
                    switch distance {
                    case 3:
                        sluice_prefetch(bindings.baseAddress! + Int(binding))
                    case 2 where bindings[Int(binding)].sequence == sequence:
                        sluice_prefetch(names.baseAddress! + Int(bindings[Int(binding)].name))
                    case 1 where bindings[Int(binding)].sequence == sequence:
                        nameIndex.prefetch(names[Int(bindings[Int(binding)].name)].text.hash)
                    default:
                        break
                    }
                }
            }
        }
    }

    /// Drops stale order entries (a refresh leaves its previous entry behind) when they pile up, so the
    /// ring stays proportional to the bindings (a check per entry, no hashing).
    mutating func compactOrder() {
        if count == 0 {
            order.removeAll(keepingCapacity: true)
        } else if order.count > 2 * max(count, 512) {
            let bindings = self.bindings
            order = CircularBuffer(order.filter { bindings[Int($0.binding)].sequence == $0.sequence })
        }
    }

    // MARK: - Reading

    /// The bindings of `name` under rules of `group` (document index; every group when nil).
    func bindings(of name: String, group: Int32?) -> [Int32] {
        let name = Prehashed(name)
        guard let slot = nameIndex.find(name.hash, matching: { names[Int($0)].text == name }).slot else { return [] }
        var result: [Int32] = []
        var index = names[Int(slot)].first
        while index != Self.none {
            if group == nil || keys[Int(bindings[Int(index)].key)].key.group == group { result.append(index) }
            index = bindings[Int(index)].nextInName
        }
        return result
    }

    /// The bindings expired at `now`, found by walking all of them (nothing when `now` is before the
    /// earliest expiry); makes `earliestExpiry` exact for the ones that stay.
    mutating func expired(now: UInt64) -> [Int32] {
        guard now >= earliestExpiry else { return [] }
        var result: [Int32] = []
        var earliest = UInt64.max
        for index in bindings.indices where bindings[index].sequence != 0 {
            if bindings[index].expiry <= now { result.append(Int32(index)) } else { earliest = min(earliest, bindings[index].expiry) }
        }
        earliestExpiry = earliest
        return result
    }

    /// Key slots, free ones included: what a table migration walks, by index.
    var keySlotCount: Int { keys.count }

    /// The key in slot `index` with its latest expiry; nil when the slot is free.
    func key(at index: Int) -> (key: LearnedKey, latest: UInt64)? {
        keys[index].first == Self.none ? nil : (keys[index].key, keys[index].latest)
    }

    /// Every binding held, in learning order: its hostname, key, expiry and label.
    func all() -> [(name: String, key: LearnedKey, expiry: UInt64, label: Label)] {
        bindings.indices.filter { bindings[$0].sequence != 0 }
            .sorted { bindings[$0].sequence < bindings[$1].sequence }
            .map { index in
                let binding = bindings[index]
                return (names[Int(binding.name)].text.value, keys[Int(binding.key)].key, binding.expiry, labels[Int(binding.label)])
            }
    }

    // MARK: - Slots

    /// Stores `element` in a free slot of `array`, or a new one at its end; returns the slot.
    private static func place<Element>(_ element: Element, in array: inout [Element],
                                       reusing free: inout [Int32]) -> Int32 {
        guard let slot = free.popLast() else {
            array.append(element)
            return Int32(array.count - 1)
        }
        array[Int(slot)] = element
        return slot
    }

    /// A key's hash for the key index: the one the packet workers' table probes by.
    @inline(__always)
    private static func hash(_ key: LearnedKey) -> Int { Int(truncatingIfNeeded: key.hash) }

    private mutating func keySlot(_ key: LearnedKey) -> Int32 {
        let hash = Self.hash(key)
        let found = keyIndex.find(hash) { keys[Int($0)].key == key }
        if let slot = found.slot { return slot }
        let slot = Self.place(Key(key: key, first: Self.none, latest: LearnedSlotState.dead), in: &keys, reusing: &freeKeys)
        keyIndex.insert(slot, hash: hash, at: found.bucket)
        return slot
    }

    /// Stores a new binding at the head of its name's and its key's lists (its links say so already).
    private mutating func insertBinding(_ binding: Binding) -> Int32 {
        let index = Self.place(binding, in: &bindings, reusing: &freeBindings)
        if binding.nextInName != Self.none { bindings[Int(binding.nextInName)].previousInName = index }
        names[Int(binding.name)].first = index
        if binding.nextInKey != Self.none { bindings[Int(binding.nextInKey)].previousInKey = index }
        keys[Int(binding.key)].first = index
        return index
    }
}
