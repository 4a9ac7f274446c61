// Reads a policy file for the command line: JSON or YAML (by content, not by name), the request
// envelope or a bare PolicyConfig. YAML is converted to the same JSON tree, so both formats get
// the same checks and the same error paths.
import Foundation
import SluicePolicy
import Yams

/// A policy file on disk.
enum PolicyFile {
    /// Why a file could not be turned into a policy.
    struct LoadError: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads and checks `path` ("-" for standard input).
    static func load(_ path: String) throws -> ParsedPolicy<PolicyRequest> {
        try loadDocument(path).parsed
    }

    /// Reads and checks `path`, and also returns the JSON tree as written, which `policy apply` sends
    /// as it is (the parsed form would lose what the operator wrote, e.g. `"*.example.com"` sugar).
    static func loadDocument(_ path: String) throws -> (tree: JSONValue, parsed: ParsedPolicy<PolicyRequest>) {
        let data: Data
        do {
            data = path == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                : try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw LoadError(description: "cannot read \(path): \(error.localizedDescription)")
        }
        let document = try tree(data, path: path)
        return (document, try PolicyParser.parseDocument(document))
    }

    /// The JSON tree of a JSON or YAML document. A document whose first non-blank character is
    /// `{` or `[` is JSON; anything else is YAML (of which JSON is a subset, but JSON's own reader
    /// gives better error positions).
    static func tree(_ data: Data, path: String) throws -> JSONValue {
        let firstByte = data.first { ![0x20, 0x09, 0x0a, 0x0d, 0xef, 0xbb, 0xbf].contains($0) }
        if firstByte == UInt8(ascii: "{") || firstByte == UInt8(ascii: "[") {
            do {
                return try JSONValue.parse(data)
            } catch {
                throw LoadError(description: "\(path): \(error.description)")
            }
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw LoadError(description: "\(path): not UTF-8 text")
        }
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw LoadError(description: "\(path): the document is empty")
            }
            return try jsonValue(node, path: path)
        } catch let error as LoadError {
            throw error
        } catch {
            throw LoadError(description: "\(path): invalid YAML: \(error)")
        }
    }

    static func jsonValue(_ node: Node, path: String) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            switch node.tag.description {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue: return node.int.map { .int(Int64($0)) } ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map(JSONValue.double) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            return .array(try sequence.map { try jsonValue($0, path: path) })
        case .mapping(let mapping):
            return .object(try mapping.map { pair in
                guard case .scalar(let key) = pair.key else {
                    throw LoadError(description: "\(path): mapping keys must be plain strings")
                }
                return (key.string, try jsonValue(pair.value, path: path))
            })
        }
    }
}
