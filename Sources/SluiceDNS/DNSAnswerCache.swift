// Upstream answers kept for their TTL, keyed by question (name case-insensitively, type, class). A hit
// only saves the upstream round trip: the proxy judges every query by policy before looking here, and
// teaches the learned set from a cached answer exactly as from a fresh one, per source. Negative answers
// (NXDOMAIN, NODATA) are kept for the SOA's negative TTL (RFC 2308 section 5); answers without a usable
// TTL, truncated ones and failures are not kept. Bounded: at most `maxEntries` answers and `maxBytes` of
// them, oldest insertion evicted.
//
// Answers are kept as the upstream's bytes, checked by their DNSWireScan, and parsed only when first hit
// (to make the reply template). Under a cache-hostile load most answers are never asked for again, and
// parsing each one into a message at store time and freeing its records at eviction cost more than the
// rest of the cache put together (dns-state-bench).
import CSluiceSystem
import NIOCore
import SluiceWire
import Synchronization

/// Cache bounds (docs/dns.md).
public struct DNSCacheConfiguration: Sendable, Equatable {
    /// Most answers held.
    public var maxEntries: Int = 10_000
    /// Most bytes of answers held (their wire size): TCP answers may be up to 64 KiB each, so the entry
    /// bound alone would allow gigabytes.
    public var maxBytes: Int = 32 << 20
    /// Positive TTLs are capped at this.
    public var maximumTTLSeconds: UInt32 = 86_400
    /// Negative TTLs are capped at this (RFC 2308 section 5 suggests one to three hours at most; names
    /// that come into existence should not stay hidden long).
    public var maximumNegativeTTLSeconds: UInt32 = 900
    /// The defaults.
    public init() {}
}

/// The answer cache. Any thread may use it; entries live behind a mutex.
public final class DNSAnswerCache: Sendable {
    /// Bounds.
    public let configuration: DNSCacheConfiguration

    /// Questions read on the bytes, hashed once (DNSQuestionKey.swift says why).
    typealias Key = DNSQuestionKey

    struct Entry {
        /// The question, read in `wire`.
        var key: Key
        /// The upstream response as received (any id, its OPT record still in).
        var wire: [UInt8] { key.message }
        /// The wire form for fast hits, made at the first hit.
        var template: TemplateState = .unmade
        var storedAt: UInt64
        var expiresAt: UInt64
    }

    /// The entries: slots of an array (nil: free, listed in `free`) found through a SlotIndex by their
    /// questions' hashes.
    struct State {
        var entries: [Entry?] = []
        /// Each slot's entry's sequence (0: free), apart: eviction and compaction test it for every order
        /// entry, and reading it through the optional entry copied the whole entry (its arrays retained).
        var sequences: [UInt64] = []
        /// Each slot's key's hash and where its answer's bytes are, apart for the same reason: the eviction
        /// prefetch reads them. The address is only a hint (the entry's array keeps the bytes alive; a
        /// prefetch of a stale address does nothing).
        var prefetchHints: [(hash: Int, bytes: UnsafeRawPointer?)] = []
        var free: [Int32] = []
        var index = SlotIndex()
        /// Insertion order, oldest first; an entry whose slot's sequence no longer matches was stored
        /// again or removed. A ring: eviction pops one entry at a time (cutting consumed entries off an
        /// array's front released thousands of keys at once, a pause of a millisecond every 10,000 stores).
        var order = CircularBuffer<(slot: Int32, sequence: UInt64)>()
        var sequence: UInt64 = 0
        var bytes = 0
        var evicted: UInt64 = 0

        /// The slot holding `key`, or nil and the index bucket where it would go.
        func find(_ key: Key) -> (slot: Int32?, bucket: Int) {
            index.find(key.hash) { entries[Int($0)]?.key == key }
        }

        /// Starts loading what evicting the next oldest entry will touch: its entry, its index bucket and
        /// the header of its answer's array (which its release reads, then free). Each is otherwise a cache
        /// miss in turn at every store: the oldest entry was last touched thousands of stores ago.
        func prefetchEvictions() {
            guard order.count > 1 else { return }
            let (slot, sequence) = order[order.index(after: order.startIndex)]
            guard sequences[Int(slot)] == sequence else { return }
            let hint = prefetchHints[Int(slot)]
            index.prefetch(hint.hash)
            if let bytes = hint.bytes { sluice_prefetch(bytes - 32) }  // the array object's header
            entries.withUnsafeBufferPointer { sluice_prefetch($0.baseAddress! + Int(slot)) }
        }

        /// Frees slot `slot` (which holds an entry).
        mutating func remove(_ slot: Int32) {
            guard let entry = entries[Int(slot)].take() else { return }
            index.remove(slot, hash: entry.key.hash)
            bytes -= entry.wire.count
            sequences[Int(slot)] = 0
            free.append(slot)
        }
    }

    enum TemplateState {
        case unmade
        case made(DNSReplyTemplate)
        /// The message does not fit a template (`lookup` serves it).
        case none
    }

    /// A cached answer as found: the upstream's bytes, their wire form for replies when they have one,
    /// and the answer's age.
    struct Hit {
        let wire: [UInt8]
        let template: DNSReplyTemplate?
        /// Seconds since it was stored.
        let age: UInt32

        /// The stored answer as a message without its OPT record, with every TTL lowered by the age. Nil
        /// only if the bytes no longer parse, which cannot happen: they were scanned before being stored.
        var agedMessage: DNSMessage? {
            guard var message = DNSAnswerCache.message(wire) else { return nil }
            func aged(_ records: [DNSResourceRecord]) -> [DNSResourceRecord] {
                records.map { record in
                    var copy = record
                    copy.ttl = record.effectiveTTL > age ? record.effectiveTTL - age : 0
                    return copy
                }
            }
            message.answers = aged(message.answers)
            message.authorities = aged(message.authorities)
            message.additionals = aged(message.additionals)
            return message
        }
    }

    private let state = Mutex(State())

    /// An empty cache.
    public init(configuration: DNSCacheConfiguration = DNSCacheConfiguration()) {
        self.configuration = configuration
    }

    /// Answers held now (expired ones until they are looked up or evicted).
    public var count: Int { state.withLock { $0.index.count } }

    /// Answers evicted because the cache was full.
    public var evicted: UInt64 { state.withLock { $0.evicted } }

    /// The cached answer to `question` with every TTL lowered by the time it spent here, or nil.
    public func lookup(_ question: DNSQuestion, now: UInt64) -> DNSMessage? {
        Self.key(question).flatMap { hit($0, now: now)?.agedMessage }
    }

    /// The cached answer to the question `key`, or nil (not cached, or expired: then it is dropped). One
    /// lock and one lookup for hit and miss alike; the first hit makes the entry's template. The proxy
    /// keeps the key of a miss for `store`, so a forwarded question is hashed once.
    func hit(_ key: Key, now: UInt64) -> Hit? {
        state.withLock { state -> Hit? in
            guard let slot = state.find(key).slot, let entry = state.entries[Int(slot)] else { return nil }
            guard entry.expiresAt > now else {
                state.remove(slot)
                return nil
            }
            let age = UInt32(min((now - entry.storedAt) / 1000, UInt64(UInt32.max)))
            let template: DNSReplyTemplate?
            switch entry.template {
            case .made(let made): template = made
            case .none: template = nil
            case .unmade:
                template = Self.message(entry.wire).flatMap { DNSReplyTemplate($0) }
                state.entries[Int(slot)]?.template = template.map { .made($0) } ?? .none
            }
            return Hit(wire: entry.wire, template: template, age: age)
        }
    }

    /// How long `response` may be cached, in seconds (nil: not at all); see `cacheTTL(of:scan:)`.
    public func cacheTTL(of response: DNSMessage) -> UInt32? {
        let bytes = response.serialized()
        return DNSWireScan(bytes).flatMap { cacheTTL(of: bytes, scan: $0) }
    }

    /// How long the response `bytes` (scanned as `scan`) may be cached, in seconds: the smallest TTL of
    /// its answer records for an answer, the SOA's negative TTL (min of its TTL and MINIMUM field) for
    /// NXDOMAIN and NODATA; nil when it must not be cached at all.
    public func cacheTTL(of bytes: [UInt8], scan: DNSWireScan) -> UInt32? {
        guard !scan.isTruncated else { return nil }
        let code = scan.responseCode
        if code == .noError, scan.answerCount > 0 {
            let ttl = scan.minimumAnswerTTL
            return ttl == 0 ? nil : min(ttl, configuration.maximumTTLSeconds)
        }
        guard code == .noError || code == .nameError else { return nil }
        // RFC 2308 section 5: without an SOA in the authority section a negative answer is not cached.
        var soaTTL: UInt32? = nil
        scan.forEachRecord(in: bytes) { record in
            guard soaTTL == nil, record.section == 1, record.type == DNSRecordType.soa.rawValue,
                  record.dataEnd - record.dataStart >= 4 else { return }
            let minimum = bytes[(record.dataEnd - 4)..<record.dataEnd].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            soaTTL = min(record.ttl, minimum & 0x7FFF_FFFF)
        }
        guard let soaTTL, soaTTL > 0 else { return nil }
        return min(soaTTL, configuration.maximumNegativeTTLSeconds)
    }

    /// Keeps `response` for the answer to `question` when it is cacheable.
    public func store(_ response: DNSMessage, for question: DNSQuestion, now: UInt64) {
        if let key = Self.key(question) { store(response, key: key, now: now) }
    }

    /// Keeps the response `bytes` (scanned as `scan`) for the answer to `question` when it is cacheable.
    public func store(_ bytes: [UInt8], scan: DNSWireScan, for question: DNSQuestion, now: UInt64) {
        if let key = Self.key(question) { store(bytes, scan: scan, key: key, now: now) }
    }

    func store(_ response: DNSMessage, key: Key, now: UInt64) {
        let bytes = response.serialized()
        guard let scan = DNSWireScan(bytes) else { return }
        store(bytes, scan: scan, key: key, now: now)
    }

    func store(_ bytes: [UInt8], scan: DNSWireScan, key: Key, now: UInt64) {
        guard configuration.maxEntries > 0, bytes.count <= configuration.maxBytes,
              let ttl = cacheTTL(of: bytes, scan: scan) else { return }
        // The key as read in the answer's own bytes (the pool checked that it repeats the question).
        guard let key = key.rebased(on: bytes) else { return }
        state.withLock { state in
            state.sequence += 1
            let entry = Entry(key: key, storedAt: now, expiresAt: now + UInt64(ttl) * 1000)
            let found = state.find(key)
            let slot: Int32
            if let existing = found.slot {
                slot = existing
                state.bytes -= state.entries[Int(slot)]?.wire.count ?? 0
                state.entries[Int(slot)] = entry
            } else if let free = state.free.popLast() {
                slot = free
                state.entries[Int(slot)] = entry
                state.index.insert(slot, hash: key.hash, at: found.bucket)
            } else {
                slot = Int32(state.entries.count)
                state.entries.append(entry)
                state.sequences.append(0)
                state.prefetchHints.append((0, nil))
                state.index.insert(slot, hash: key.hash, at: found.bucket)
            }
            state.sequences[Int(slot)] = state.sequence
            state.prefetchHints[Int(slot)] = (key.hash, bytes.withUnsafeBytes { $0.baseAddress })
            state.bytes += bytes.count
            state.order.append((slot, state.sequence))
            while state.index.count > configuration.maxEntries || state.bytes > configuration.maxBytes,
                  let (oldest, sequence) = state.order.popFirst() {
                if state.sequences[Int(oldest)] == sequence {
                    state.remove(oldest)
                    state.evicted += 1
                }
            }
            if state.index.count >= configuration.maxEntries { state.prefetchEvictions() }
            // Keep the ring proportional to the cache: stale entries (a key stored again) are filtered out
            // when they pile up.
            if state.order.count > 2 * max(state.index.count, 512) {
                let sequences = state.sequences
                state.order = CircularBuffer(state.order.filter { sequences[Int($0.slot)] == $0.sequence })
            }
        }
    }

    /// Empties the cache.
    public func removeAll() {
        state.withLock { state in state = State(evicted: state.evicted) }
    }

    /// The key of `question`, read in a query asking it.
    static func key(_ question: DNSQuestion) -> Key? {
        var query = DNSMessage(header: DNSHeader(id: 0))
        query.questions = [question]
        return Key(message: query.serialized(compressNames: false))
    }

    /// Stored bytes as the message `lookup` and templates start from: parsed, without the OPT record
    /// (each reply gets the client's own).
    static func message(_ wire: [UInt8]) -> DNSMessage? {
        guard var message = try? DNSMessage(parsing: wire) else { return nil }
        message.edns = nil
        return message
    }
}
