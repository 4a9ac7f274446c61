// API token text and hashing. A token reads `sluice_<id>_<secret>`: the 16-hex-digit id finds the
// row without an index on secrets, the 43-character base64url secret carries 256 random bits, and
// only the SHA-256 of the whole text is stored. Comparison of hashes is constant-time.
import Crypto
import Foundation

/// Creating, parsing and checking API tokens. Stateless; callable from any thread.
public enum APIToken {
    /// The fixed prefix, which also lets secret scanners recognise leaked tokens.
    public static let prefix = "sluice_"

    /// A new token: its id and full text. The text is shown to the operator once and never stored.
    public static func generate() -> (id: String, text: String) {
        var generator = SystemRandomNumberGenerator()
        let idBytes = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let secretBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let id = idBytes.map { String(format: "%02x", $0) }.joined()
        let secret = Data(secretBytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return (id, prefix + id + "_" + secret)
    }

    /// The token id embedded in `text`, or nil when the text is not shaped like a token.
    public static func id(of text: String) -> String? {
        guard text.hasPrefix(prefix) else { return nil }
        let rest = text.dropFirst(prefix.count)
        guard let separator = rest.firstIndex(of: "_") else { return nil }
        let id = rest[..<separator]
        guard id.count == 16, id.allSatisfy(\.isHexDigit), rest.index(after: separator) < rest.endIndex else {
            return nil
        }
        return String(id)
    }

    /// SHA-256 of the token text, the only form the store keeps.
    public static func hash(_ text: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(text.utf8)))
    }

    /// Whether `text` hashes to `storedHash`, comparing every byte so timing does not reveal how
    /// many leading bytes matched.
    public static func matches(_ text: String, storedHash: [UInt8]) -> Bool {
        let presented = hash(text)
        guard presented.count == storedHash.count else { return false }
        var difference: UInt8 = 0
        for index in presented.indices { difference |= presented[index] ^ storedHash[index] }
        return difference == 0
    }

    /// Creates a token for an account in the store and returns its record and the text to show once.
    public static func issue(
        in store: some ManagementStore, accountID: String, name: String?, actor: String
    ) async throws -> (record: TokenRecord, text: String) {
        let (id, text) = generate()
        let record = try await store.addToken(id: id, accountID: accountID, name: name, hash: hash(text), actor: actor)
        return (record, text)
    }
}
