// The policy object travels through the API as SluicePolicy's JSONValue: stored as canonical text
// (keys sorted, no whitespace) and embedded as-is in responses, so a read returns what was written.
import Foundation
import SluicePolicy

// Encodable comes from SluicePolicy (PolicySchema+Coding.swift); these are the API's helpers.
extension JSONValue {
    /// The canonical text: keys sorted, no insignificant whitespace, slashes unescaped. Byte for
    /// byte what `JSONEncoder` with `[.sortedKeys, .withoutEscapingSlashes]` writes (the store
    /// holds texts written both ways; tests compare the two), but written directly: going through
    /// `Encodable` cost about a sixth of a 10,000-rule policy write.
    var canonicalText: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4096)
        writeCanonical(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private func writeCanonical(into bytes: inout [UInt8]) {
        switch self {
        case .null:
            bytes += "null".utf8
        case .bool(let value):
            bytes += (value ? "true" : "false").utf8
        case .int(let value):
            bytes += String(value).utf8
        case .double(let value):
            // Rare in policies; JSONEncoder's number formatting is kept by asking it.
            let encoder = JSONEncoder()
            let text = (try? encoder.encode([value])).map { String(decoding: $0, as: UTF8.self) } ?? "[null]"
            bytes += text.utf8.dropFirst().dropLast()
        case .string(let value):
            JSONValue.writeString(value, into: &bytes)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                element.writeCanonical(into: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            // JSONEncoder orders keys by their UTF-8 bytes (not by String comparison, which normalizes).
            for (index, member) in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) })
                .enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONValue.writeString(member.key, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                member.value.writeCanonical(into: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string as JSONEncoder writes it: quote and backslash escaped, the short escapes for
    /// backspace, tab, newline, form feed and carriage return, `\u00xx` for the other control
    /// characters, everything else (slashes, DEL, non-ASCII) as UTF-8.
    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func writeString(_ value: String, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
            case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
            case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0..<0x20: bytes += "\\u00".utf8
                bytes.append(hexDigits[Int(byte >> 4)])
                bytes.append(hexDigits[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
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
