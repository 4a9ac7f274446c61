// The policy object travels through the API as SluicePolicy's JSONValue: stored as canonical text
// (keys sorted, no whitespace) and embedded as-is in responses, so a read returns what was written.
import Foundation
import SluicePolicy

// Encodable comes from SluicePolicy (PolicySchema+Coding.swift); these are the API's helpers.
extension JSONValue {
    /// The canonical text: keys sorted, no insignificant whitespace, slashes unescaped.
    var canonicalText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a JSONValue cannot fail: every case maps to a JSON primitive or container.
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    /// The member `key` of an object, or nil.
    func member(_ key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// Parses stored canonical text; the store only holds text this API validated.
    static func stored(_ text: String) throws -> JSONValue {
        try JSONValue.parse(Array(text.utf8))
    }
}
