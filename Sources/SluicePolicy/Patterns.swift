// Name patterns of the policy: regular expressions anchored to the whole string (TLS and HTTP
// matchers) and the `dns_hostname` pattern with its exact-name and wildcard forms.
// These are evaluated per DNS query or TLS handshake, never per packet.

/// A regular expression that must match a whole string, case-insensitively.
/// Equality and the encoded form are the source text.
public struct AnchoredPattern: @unchecked Sendable, Equatable, CustomStringConvertible {
    // `Regex` is an immutable value once built; it is not marked Sendable because of its generic
    // output type, which this wrapper fixes to `AnyRegexOutput` and never exposes.
    private let regex: Regex<AnyRegexOutput>
    /// The expression as written in the policy.
    public let source: String

    /// Compiles `source`; throws with the regex engine's explanation when it is not valid.
    public init(_ source: String) throws {
        self.regex = try Regex(source).ignoresCase()
        self.source = source
    }

    /// Whether the whole of `text` matches.
    public func matches(_ text: String) -> Bool {
        (try? regex.wholeMatch(in: text)) != nil
    }

    public static func == (lhs: AnchoredPattern, rhs: AnchoredPattern) -> Bool { lhs.source == rhs.source }

    public var description: String { source }
}

/// A `dns_hostname` matcher (docs/policy.md, "Hostname patterns"):
/// - a name of letters, digits, `-` and `.` only is an exact name (its dots are literal, so
///   `api.example.com` never matches the look-alike `api-example.com`);
/// - `*.example.com` matches any name below `example.com` (not `example.com` itself);
/// - anything else is a regular expression matched against the whole name.
/// Matching is case-insensitive and ignores one trailing dot.
public enum HostnamePattern: Sendable, Equatable, CustomStringConvertible {
    case exact(String, source: String)
    case subdomains(of: String, source: String)
    case regex(AnchoredPattern)

    /// Why a pattern was refused.
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Classifies and checks a pattern as written in a policy.
    public init(_ source: String) throws(Invalid) {
        guard !source.isEmpty else { throw Invalid(description: "must not be empty") }
        guard source.utf8.count <= 1024 else { throw Invalid(description: "is longer than 1024 characters") }
        let normal = HostnamePattern.normalize(source)
        let nameCharacters = normal.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_")
        }
        if nameCharacters {
            guard HostnamePattern.isValidName(normal) else {
                throw Invalid(description: "'\(source)' is not a valid host name (empty label or label over 63 bytes)")
            }
            self = .exact(normal, source: source)
        } else if normal.hasPrefix("*."), HostnamePattern.isValidName(String(normal.dropFirst(2))),
                  !normal.dropFirst(2).contains("*") {
            self = .subdomains(of: String(normal.dropFirst(2)), source: source)
        } else {
            do {
                self = .regex(try AnchoredPattern(source))
            } catch {
                throw Invalid(description: "'\(source)' is neither a host name, a '*.domain' wildcard nor a valid "
                    + "regular expression: \(error)")
            }
        }
    }

    /// Lower-cases and drops one trailing dot, the form in which names are compared.
    public static func normalize(_ name: String) -> String {
        // Already in that form (the DNS proxy's names are: DNSName.text): the same string, no copy.
        let utf8 = name.utf8
        if utf8.last != UInt8(ascii: ".") || utf8.count == 1,
           !utf8.contains(where: { $0 >= 0x80 || ($0 >= 0x41 && $0 <= 0x5A) }) {
            return name
        }
        var lower = name.lowercased()
        if lower.hasSuffix("."), lower.count > 1 { lower.removeLast() }
        return lower
    }

    static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0.utf8.count <= 63 }
    }

    /// Whether a queried name matches.
    public func matches(_ name: String) -> Bool {
        matches(normalized: HostnamePattern.normalize(name))
    }

    /// `matches` for a name already in `normalize`d form: a caller trying many patterns (the DNS
    /// evaluation) normalizes once.
    public func matches(normalized normal: String) -> Bool {
        switch self {
        case .exact(let exact, _):
            return normal == exact
        case .subdomains(let domain, _):
            return normal.count > domain.count + 1 && normal.hasSuffix("." + domain)
        case .regex(let pattern):
            return pattern.matches(normal)
        }
    }

    /// The pattern as written in the policy.
    public var description: String {
        switch self {
        case .exact(_, let source), .subdomains(_, let source): return source
        case .regex(let pattern): return pattern.source
        }
    }
}
