// `sluice policy check|eval`: the operator's dry run of a policy file, with no gateway and no
// API: does it validate, and what would it do to this packet or this DNS query. The subcommands
// that talk to a running gateway are in PolicyCommand+Server.swift.
import ArgumentParser
import Foundation
import SluicePolicy

/// `sluice policy …`: working with policies.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Check policy files locally, and manage the policies of a running gateway.",
        discussion: """
        Local, no gateway needed: check, eval. Against the management API (--server, --token or \
        SLUICE_TOKEN, --insecure or --cacert for the self-signed certificate): apply, list, get, delete, \
        mode, history.
        """,
        subcommands: [
            PolicyCheckCommand.self, PolicyEvalCommand.self, PolicyApplyCommand.self, PolicyListCommand.self,
            PolicyGetCommand.self, PolicyDeleteCommand.self, PolicyModeCommand.self, PolicyHistoryCommand.self,
        ]
    )
}

/// Prints every problem of an invalid file on standard error.
func reportInvalid(_ path: String, _ error: Error) {
    var standardError = FileHandle.standardError
    if let invalid = error as? PolicyValidationError {
        print("\(path): invalid policy, \(invalid.issues.count) problem\(invalid.issues.count == 1 ? "" : "s"):",
              to: &standardError)
        for issue in invalid.issues { print("  \(issue)", to: &standardError) }
    } else {
        print("\(error)", to: &standardError)
    }
}

extension FileHandle: @retroactive TextOutputStream {
    public func write(_ string: String) { write(Data(string.utf8)) }
}

struct PolicyCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a policy file (the request envelope or a bare policy, JSON or YAML).",
        discussion: "Exit status 0 when valid; 1 with every problem and its JSON path when not."
    )

    @Argument(help: "The policy file, or - for standard input.")
    var file: String

    func run() throws {
        let parsed: ParsedPolicy<PolicyRequest>
        do {
            parsed = try PolicyFile.load(file)
        } catch {
            reportInvalid(file, error)
            throw ExitCode(1)
        }
        var standardError = FileHandle.standardError
        for warning in parsed.warnings { print("warning: \(warning)", to: &standardError) }
        let policy = parsed.value.policy
        let rules = policy.sourceGroups.reduce(0) { $0 + $1.rules.count }
        let compiled = PolicyCompiler.compile(parsed.value)
        print("\(file): valid; mode \(parsed.value.mode.rawValue), \(policy.sourceGroups.count) source groups, "
              + "\(rules) rules, default_policy \(policy.defaultPolicy?.rawValue ?? "unset (deny)"), "
              + "tables \(compiled.tableBytes) bytes")
    }
}

struct PolicyEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "What a policy does to one packet (--dst, --proto) or one DNS query (--dns).",
        discussion: """
        Examples:
          sluice policy eval policy.json --src 10.0.0.5 --dst 203.0.113.7 --proto tcp --dport 443
          sluice policy eval policy.json --src 10.0.0.5 --dst 198.51.100.1 --proto icmp --icmp-type 8 --icmp-code 0
          sluice policy eval policy.json --src 10.0.0.5 --dns api.example.com --json
        Hostname rules match packets only to addresses learned from DNS answers, which a dry run
        has none of: evaluate the DNS query with --dns. Without --sni, a rule with a tls block
        reports decided_by tls_pending (the gateway would wait for the handshake).
        """
    )

    @Argument(help: "The policy file, or - for standard input.")
    var file: String

    @Option(help: "Source address of the packet or the DNS query.")
    var src: String

    @Option(help: "Destination address of the packet.")
    var dst: String?

    @Option(help: "Protocol: tcp, udp, icmp, icmpv6 or a number 0-255.")
    var proto: String?

    @Option(help: "Source port (tcp, udp, sctp).")
    var sport: UInt16 = 0

    @Option(help: "Destination port (tcp, udp, sctp).")
    var dport: UInt16 = 0

    @Option(name: .customLong("icmp-type"), help: "ICMP type.")
    var icmpType: UInt8 = 0

    @Option(name: .customLong("icmp-code"), help: "ICMP code.")
    var icmpCode: UInt8 = 0

    @Option(help: "Evaluate a DNS query for this name instead of a packet.")
    var dns: String?

    @Option(help: "The TLS server name the client sends (for rules with a tls block).")
    var sni: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard IPAddress(src) != nil else { throw ValidationError("--src '\(src)' is not an IP address") }
        if dns != nil {
            guard dst == nil, proto == nil else { throw ValidationError("--dns evaluates a DNS query: drop --dst and --proto") }
            return
        }
        guard let dst, let destination = IPAddress(dst) else {
            throw ValidationError("give --dst ADDRESS and --proto for a packet, or --dns NAME for a DNS query")
        }
        guard destination.isV4 == IPAddress(src)!.isV4 else {
            throw ValidationError("--src and --dst must be of the same address family")
        }
        guard let proto else { throw ValidationError("--proto is required for a packet (tcp, udp, icmp, icmpv6 or 0-255)") }
        guard case .number? = ProtoValue(name: proto) else {
            throw ValidationError("--proto '\(proto)' is not a protocol (tcp, udp, icmp, icmpv6 or 0-255)")
        }
    }

    func run() throws {
        let parsed: ParsedPolicy<PolicyRequest>
        do {
            parsed = try PolicyFile.load(file)
        } catch {
            reportInvalid(file, error)
            throw ExitCode(1)
        }
        let evaluator = ReferenceEvaluator(parsed.value)
        let source = IPAddress(src)!
        let verdict: Verdict
        let subject: String
        if let dns {
            verdict = evaluator.evaluateDNS(source: source, name: dns)
            subject = "DNS query for \(dns) from \(source)"
        } else {
            guard case .number(let number)? = ProtoValue(name: proto!) else { throw ExitCode(64) }
            let packet = PacketQuery(src: source, dst: IPAddress(dst!)!, proto: number, srcPort: sport, dstPort: dport,
                                     icmpType: icmpType, icmpCode: icmpCode)
            verdict = evaluator.evaluate(packet, tls: sni.map { TLSObservation(sni: $0) })
            subject = "\(packet)"
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(verdict), as: UTF8.self))
            return
        }
        print(PolicyEvalCommand.describe(verdict, subject: subject))
    }

    /// The verdict in a sentence or three, for people.
    static func describe(_ verdict: Verdict, subject: String) -> String {
        var who: String
        switch verdict.decidedBy {
        case .rule: who = "rule '\(verdict.rule ?? "?")' of source group '\(verdict.sourceGroup ?? "?")'"
        case .groupDefault: who = "the default_action of source group '\(verdict.sourceGroup ?? "?")'"
        case .defaultPolicy: who = "the policy's default_policy (no source group decided)"
        case .dnsNoRule: who = "no DNS rule of source group '\(verdict.sourceGroup ?? "?")' matches (DNS denies by default)"
        case .noGroup: who = "no source group contains the source (DNS denies by default)"
        case .disabled: who = "the policy is disabled, so it is not active (the gateway fails closed)"
        case .tlsPending: who = "rule '\(verdict.rule ?? "?")' needs the TLS handshake; pass --sni to decide it"
        }
        var lines = ["\(subject): \(verdict.verdict.rawValue.uppercased())", "  decided by \(who)"]
        if verdict.verdict != verdict.decision {
            lines.append("  the policy logic says \(verdict.decision.rawValue); \(verdict.mode.rawValue) mode lets it through")
        }
        for finding in verdict.findings {
            let place = [finding.sourceGroup.map { "group '\($0)'" }, finding.rule.map { "rule '\($0)'" }]
                .compactMap { $0 }.joined(separator: ", ")
            lines.append("  finding: deny by \(place.isEmpty ? "default_policy" : place), "
                         + (finding.enforced ? "enforced" : "not enforced (audit)"))
        }
        return lines.joined(separator: "\n")
    }
}
