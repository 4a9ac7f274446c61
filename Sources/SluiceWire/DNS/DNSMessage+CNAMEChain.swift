// Following the answer from the question name through CNAMEs to addresses: what the proxy teaches the
// dataplane. Only records reachable from the question name count, so an upstream (or a spoofer) cannot
// slip unrelated names' addresses into a learned set by adding them to the answer section.

/// One alias on the way from the question name to the canonical name.
public struct DNSCNAMELink: Hashable, Sendable {
    /// The alias (the CNAME record's owner).
    public var name: DNSName
    /// The name it points to.
    public var target: DNSName
    /// The CNAME record's effective TTL.
    public var ttl: UInt32
}

/// An address found at the end of the chain.
public struct DNSAddressAnswer: Hashable, Sendable {
    /// A (`.a`) or AAAA (`.aaaa`) data.
    public var address: DNSRecordData
    /// The address record's own effective TTL.
    public var ttl: UInt32
    /// The smallest TTL along the path: the address record and every CNAME before it. An address stops
    /// being vouched for when any link of the chain expires, so this is the TTL to learn it for.
    public var chainTTL: UInt32
}

/// The question name resolved through the answer section.
public struct DNSResolution: Hashable, Sendable {
    /// The question name.
    public var queryName: DNSName
    /// The name the chain ends at (the question name when there is no CNAME).
    public var canonicalName: DNSName
    /// The aliases followed, in order.
    public var chain: [DNSCNAMELink]
    /// A and AAAA records owned by the canonical name, in answer order.
    public var addresses: [DNSAddressAnswer]
}

/// Why a chain could not be followed.
public enum DNSChainError: Error, Hashable, Sendable {
    /// The message has no question to start from.
    case noQuestion
    /// More aliases than the bound allows.
    case chainTooLong
    /// A name was reached twice.
    case loop
    /// One name has several different CNAME records (RFC 2181 section 10.1 allows only one).
    case conflictingCNAME
}

extension DNSMessage {
    /// Follows CNAMEs (class IN only) from the first question's name through the answer section to A and
    /// AAAA records of the final name. A name that has a CNAME is an alias: addresses it also claims are
    /// ignored (RFC 1034 says it can have no other data). At most `maxChainLength` aliases are followed.
    public func resolveAddresses(maxChainLength: Int = 16) -> Result<DNSResolution, DNSChainError> {
        guard let question = questions.first else { return .failure(.noQuestion) }
        var current = question.name
        var seen: Set<DNSName> = [current]
        var chain: [DNSCNAMELink] = []
        var minimumTTL = UInt32.max
        while true {
            var next: (target: DNSName, ttl: UInt32)? = nil
            for record in answers where record.dnsClass == .internet && record.name == current {
                guard case .cname(let target) = record.data else { continue }
                if let existing = next, existing.target != target { return .failure(.conflictingCNAME) }
                next = (target, min(next?.ttl ?? UInt32.max, record.effectiveTTL))
            }
            guard let (target, ttl) = next else { break }
            guard chain.count < maxChainLength else { return .failure(.chainTooLong) }
            guard seen.insert(target).inserted else { return .failure(.loop) }
            chain.append(DNSCNAMELink(name: current, target: target, ttl: ttl))
            minimumTTL = min(minimumTTL, ttl)
            current = target
        }
        var addresses: [DNSAddressAnswer] = []
        for record in answers where record.dnsClass == .internet && record.name == current {
            switch record.data {
            case .a, .aaaa:
                let ttl = record.effectiveTTL
                addresses.append(DNSAddressAnswer(address: record.data, ttl: ttl, chainTTL: min(ttl, minimumTTL)))
            default:
                continue
            }
        }
        return .success(DNSResolution(queryName: question.name, canonicalName: current, chain: chain,
                                      addresses: addresses))
    }
}
