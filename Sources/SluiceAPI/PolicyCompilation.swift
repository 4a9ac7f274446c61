// The single place where a stored policy body becomes the dataplane's compiled tables. Interim:
// until SluicePolicy's compiler is merged this only re-parses the stored JSON.
import Foundation
import SluiceStore

/// Compiles stored policy bodies. Stateless; callable from any task.
enum PolicyCompilation {
    /// The compiled form of a stored body and mode.
    static func compile(body: String, mode: PolicyMode) throws -> (any Sendable)? {
        _ = try JSONValue.parse(Array(body.utf8))
        return nil
    }
}
