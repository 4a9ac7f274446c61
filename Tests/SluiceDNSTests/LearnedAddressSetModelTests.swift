// The learned set against a plain model of its documented behaviour (a dictionary of bindings walked in
// full for every question), under seeded random sequences of learning, refreshing, withdrawal, eviction,
// expiry, purges and rebinding. The set keeps its bindings in linked slots with free lists and derives
// each address's latest expiry incrementally; the model recomputes everything, so a slip in the links,
// a reused slot or a stale latest expiry shows as a different answer.
import SluicePolicy
import SluicePolicyGen
import Testing
@testable import SluiceDNS

/// The model: every binding with its expiry and learning sequence, in logical milliseconds.
private struct LearnedModel {
    struct Key: Hashable {
        var name: String
        var group: Int
        var rule: Int
        var address: IPAddress
    }

    struct Binding {
        var expiry: Int
        var sequence: Int
        var groupID: String
        var ruleID: String
    }

    let maxEntries: Int
    var bindings: [Key: Binding] = [:]
    var sequence = 0
    var lastPurge: Int? = nil
    var evicted = 0, withdrawn = 0, expired = 0

    mutating func learn(_ name: String, group: Int, rule: Int, ids: (String, String), _ addresses: [(IPAddress, UInt32)],
                        now: Int) {
        if bindings.count + addresses.count > maxEntries, lastPurge != now { purge(now: now) }
        for (address, ttl) in addresses {
            let key = Key(name: name, group: group, rule: rule, address: address)
            let expiry = now + Int(ttl) * 1000
            sequence += 1
            if let old = bindings[key] {
                if old.expiry >= expiry { continue }
                bindings[key]!.expiry = expiry
                bindings[key]!.sequence = sequence
            } else {
                bindings[key] = Binding(expiry: expiry, sequence: sequence, groupID: ids.0, ruleID: ids.1)
            }
        }
        while bindings.count > maxEntries {
            let oldest = bindings.min { $0.value.sequence < $1.value.sequence }!.key
            bindings[oldest] = nil
            evicted += 1
        }
    }

    mutating func withdraw(_ name: String, group: Int?) -> Int {
        let removed = bindings.keys.filter { $0.name == name && (group == nil || $0.group == group) }
        for key in removed { bindings[key] = nil }
        withdrawn += removed.count
        return removed.count
    }

    mutating func purge(now: Int) {
        lastPurge = now
        let gone = bindings.filter { $0.value.expiry <= now }.map(\.key)
        for key in gone { bindings[key] = nil }
        expired += gone.count
    }

    mutating func rebind(now: Int, _ transform: (String, String, String) -> (group: Int, rule: Int)?) {
        var fresh: [Key: Binding] = [:]
        var sequence = 0
        for (key, binding) in bindings.sorted(by: { $0.value.sequence < $1.value.sequence }) where binding.expiry > now {
            guard let (group, rule) = transform(key.name, binding.groupID, binding.ruleID) else { continue }
            let newKey = Key(name: key.name, group: group, rule: rule, address: key.address)
            sequence += 1
            if let old = fresh[newKey] {
                if old.expiry >= binding.expiry { continue }
                fresh[newKey]!.expiry = binding.expiry
                fresh[newKey]!.sequence = sequence
            } else {
                fresh[newKey] = Binding(expiry: binding.expiry, sequence: sequence, groupID: binding.groupID,
                                        ruleID: binding.ruleID)
            }
        }
        bindings = fresh
        self.sequence = sequence
    }

    func contains(group: Int, rule: Int, address: IPAddress, now: Int) -> Bool {
        bindings.contains { $0.key.group == group && $0.key.rule == rule && $0.key.address == address && $0.value.expiry > now }
    }

    /// (hostname, group, rule, addresses) of the live bindings, as `entries()` sorts them.
    func entries(now: Int) -> [String] {
        var grouped: [String: [IPAddress]] = [:]
        for (key, binding) in bindings where binding.expiry > now {
            grouped["\(key.name) \(key.group) \(key.rule) \(binding.groupID)/\(binding.ruleID)", default: []].append(key.address)
        }
        return grouped.map { "\($0.key) \($0.value.sorted().map(\.description))" }.sorted()
    }
}

@Suite struct LearnedAddressSetModelTests {
    /// Logical time moves in steps of 100 s and every TTL is 50 s off a multiple of 100 s, so no expiry
    /// ever falls within 50 s of a moment the test looks, whatever milliseconds the test itself takes
    /// (the set reads a real clock, moved forward by `advanceClock`).
    /// A broken link can make a list loop forever: the time limit turns that into a failure.
    @Test(.timeLimit(.minutes(1)), arguments: [1, 2, 3, 4, 5, 6])
    func agreesWithTheModel(seed: UInt64) async {
        var random = SeededRandom(seed: seed)
        var configuration = LearnedAddressConfiguration()
        configuration.graceSeconds = 0
        configuration.minimumTTLSeconds = 1
        configuration.maxEntries = 24
        let set = LearnedAddressSet(configuration: configuration)
        var model = LearnedModel(maxEntries: configuration.maxEntries)
        let names = (0..<12).map { "n\($0).test" }
        let addresses: [IPAddress] = (0..<6).map { .v4(0xC000_0200 + UInt32($0)) } + [.v6(0xC000_0200), .v6(1)]
        let ttls: [UInt32] = [50, 150, 250, 450, 1050]
        var now = 0
        // The active policy's ids by document index; a new policy reorders them and may drop a rule id.
        var groupIDs = ["g0", "g1"], ruleIDs = ["r0", "r1", "r2"]

        for step in 0..<3000 {
            // Long and synchronous: it lets the other tests' tasks run now and then (the cooperative pool
            // has one thread per core, and timing tests elsewhere must not wait for this one).
            if step % 100 == 0 { await Task.yield() }
            let operation = Int.random(in: 0..<100, using: &random)
            switch operation {
            case 0..<70:
                let name = names.randomElement(using: &random)!
                let (group, rule) = (Int.random(in: 0..<2, using: &random), Int.random(in: 0..<3, using: &random))
                let answer = (0..<Int.random(in: 1...3, using: &random)).map { _ in
                    (addresses.randomElement(using: &random)!, ttls.randomElement(using: &random)!)
                }
                set.learn(hostname: name, group: group, rule: rule, groupID: groupIDs[group], ruleID: ruleIDs[rule],
                          addresses: answer)
                model.learn(name, group: group, rule: rule, ids: (groupIDs[group], ruleIDs[rule]), answer, now: now)
            case 70..<80:
                let name = names.randomElement(using: &random)!
                let group: Int? = Bool.random(using: &random) ? nil : Int.random(in: 0..<2, using: &random)
                #expect(set.withdraw(hostname: name, group: group) == model.withdraw(name, group: group), "step \(step)")
            case 80..<92:
                now += 100_000
                set.advanceClock(byMilliseconds: 100_000)
            case 92..<97:
                set.purgeExpired()
                model.purge(now: now)
            default:
                // A new policy: the groups and rules in another order, and one of four rule ids left out.
                groupIDs.shuffle(using: &random)
                ruleIDs = Array(["r0", "r1", "r2", "r3"].shuffled(using: &random).prefix(3))
                let (groups, rules) = (groupIDs, ruleIDs)
                let transform: (String, String, String) -> (group: Int, rule: Int)? = { _, group, rule in
                    guard let groupIndex = groups.firstIndex(of: group), let ruleIndex = rules.firstIndex(of: rule) else {
                        return nil
                    }
                    return (groupIndex, ruleIndex)
                }
                set.rebind(transform)
                model.rebind(now: now, transform)
            }
            for group in 0..<2 {
                for rule in 0..<3 {
                    for address in addresses {
                        let expected = model.contains(group: group, rule: rule, address: address, now: now)
                        guard set.contains(group: group, rule: rule, address: address) == expected else {
                            Issue.record("step \(step): group \(group) rule \(rule) \(address): expected \(expected)")
                            return
                        }
                    }
                }
            }
            let statistics = set.statistics()
            guard statistics.entries == model.bindings.count, statistics.evicted == UInt64(model.evicted),
                  statistics.expired == UInt64(model.expired), statistics.withdrawn == UInt64(model.withdrawn) else {
                let expected = "\(model.bindings.count) bindings, \(model.evicted) evicted, \(model.expired) expired, "
                    + "\(model.withdrawn) withdrawn"
                Issue.record("step \(step): \(statistics) against the model's \(expected)")
                return
            }
            if step % 50 == 0 {
                let entries = set.entries().map { entry -> String in
                    let addresses = entry.addresses.map(\.address).map(\.description)
                    return "\(entry.hostname) \(entry.group) \(entry.rule) \(entry.groupID)/\(entry.ruleID) \(addresses)"
                }.sorted()
                #expect(entries == model.entries(now: now), "step \(step)")
            }
        }
    }
}
