// Upstream answers kept for their TTL, keyed by question (name case-insensitively, type, class). A hit
// only saves the upstream round trip: the proxy judges every query by policy before looking here, and
// teaches the learned set from a cached answer exactly as from a fresh one, per source. Negative answers
// (NXDOMAIN, NODATA) are kept for the SOA's negative TTL (RFC 2308 section 5); answers without a usable
// TTL, truncated ones and failures are not kept. Bounded: at most `maxEntries`, oldest insertion evicted.
import SluiceWire
import Synchronization

/// Cache bounds (docs/dns.md).
public struct DNSCacheConfiguration: Sendable, Equatable {
    /// Most answers held.
    public var maxEntries: Int = 10_000
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

    struct Entry {
        /// The upstream response, without its OPT record.
        var message: DNSMessage
        /// The wire form for fast hits, made at the first hit (most answers stored under a cache-hostile
        /// load are never asked for again, and making one serialises the message).
        var template: TemplateState = .unmade
        var storedAt: UInt64
        var expiresAt: UInt64
        var sequence: UInt64
    }

    struct State {
        var entries: [DNSQuestion: Entry] = [:]
        var order: [(key: DNSQuestion, sequence: UInt64)] = []
        var orderHead = 0
        var sequence: UInt64 = 0
        var evicted: UInt64 = 0
    }

    enum TemplateState {
        case unmade
        case made(DNSReplyTemplate)
        /// The message does not fit a template (`lookup` serves it).
        case none
    }

    /// A cached answer as found: the stored message, its wire form when it has one, and its age.
    struct Hit {
        let message: DNSMessage
        let template: DNSReplyTemplate?
        /// Seconds since it was stored.
        let age: UInt32

        /// The message with every TTL lowered by the age.
        var agedMessage: DNSMessage {
            var message = message
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
    public var count: Int { state.withLock { $0.entries.count } }

    /// Answers evicted because the cache was full.
    public var evicted: UInt64 { state.withLock { $0.evicted } }

    /// The cached answer to `question` with every TTL lowered by the time it spent here, or nil.
    public func lookup(_ question: DNSQuestion, now: UInt64) -> DNSMessage? {
        hit(question, now: now)?.agedMessage
    }

    /// The cached answer to `question`, or nil (not cached, or expired: then it is dropped). One lock
    /// and one hash for hit and miss alike; the first hit makes the entry's template.
    func hit(_ question: DNSQuestion, now: UInt64) -> Hit? {
        state.withLock { state -> Hit? in
            guard let entry = state.entries[question] else { return nil }
            guard entry.expiresAt > now else {
                state.entries[question] = nil
                return nil
            }
            let age = UInt32(min((now - entry.storedAt) / 1000, UInt64(UInt32.max)))
            let template: DNSReplyTemplate?
            switch entry.template {
            case .made(let made): template = made
            case .none: template = nil
            case .unmade:
                template = DNSReplyTemplate(entry.message)
                state.entries[question]?.template = template.map { .made($0) } ?? .none
            }
            return Hit(message: entry.message, template: template, age: age)
        }
    }

    /// How long `response` may be cached, in seconds: the smallest TTL of its records for an answer, the
    /// SOA's negative TTL (min of its TTL and MINIMUM field) for NXDOMAIN and NODATA; nil when it must not
    /// be cached at all.
    public func cacheTTL(of response: DNSMessage) -> UInt32? {
        guard !response.header.isTruncated else { return nil }
        let code = response.responseCode
        if code == .noError, !response.answers.isEmpty {
            let ttl = response.answers.map(\.effectiveTTL).min() ?? 0
            return ttl == 0 ? nil : min(ttl, configuration.maximumTTLSeconds)
        }
        guard code == .noError || code == .nameError else { return nil }
        // RFC 2308 section 5: without an SOA in the authority section a negative answer is not cached.
        for record in response.authorities where record.type == .soa {
            guard case .opaque(let data) = record.data, data.count >= 4 else { continue }
            let minimum = data.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let ttl = min(record.effectiveTTL, minimum & 0x7FFF_FFFF)
            return ttl == 0 ? nil : min(ttl, configuration.maximumNegativeTTLSeconds)
        }
        return nil
    }

    /// Keeps `response` for the answer to `question` when it is cacheable.
    public func store(_ response: DNSMessage, for question: DNSQuestion, now: UInt64) {
        guard configuration.maxEntries > 0, let ttl = cacheTTL(of: response) else { return }
        var message = response
        message.edns = nil
        state.withLock { state in
            state.sequence += 1
            state.entries[question] = Entry(message: message, storedAt: now, expiresAt: now + UInt64(ttl) * 1000,
                                            sequence: state.sequence)
            state.order.append((question, state.sequence))
            while state.entries.count > configuration.maxEntries, state.orderHead < state.order.count {
                let (key, sequence) = state.order[state.orderHead]
                state.orderHead += 1
                if state.entries[key]?.sequence == sequence {
                    state.entries[key] = nil
                    state.evicted += 1
                }
            }
            // Keep the list proportional to the cache: stale entries (a key stored again) are filtered out
            // only when they pile up, consumed ones are cut off the front (no lookup per entry).
            let pending = state.order.count - state.orderHead
            if pending > 2 * max(state.entries.count, 512) {
                state.order = state.order[state.orderHead...].filter { state.entries[$0.key]?.sequence == $0.sequence }
                state.orderHead = 0
            } else if state.orderHead > 1024 && state.orderHead > pending {
                state.order.removeFirst(state.orderHead)
                state.orderHead = 0
            }
        }
    }

    /// Empties the cache.
    public func removeAll() {
        state.withLock { state in state = State(evicted: state.evicted) }
    }
}
