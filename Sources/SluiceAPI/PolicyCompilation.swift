// The single place where a stored policy body becomes the dataplane's compiled tables.
import Foundation
import SluicePolicy
import SluiceStore

/// Compiles stored policy bodies. Stateless; callable from any task.
enum PolicyCompilation {
    /// The compiled tables of a stored body and mode. The body was validated when written; a
    /// failure here means the parser tightened since, and is reported, never ignored.
    static func compile(body: String, mode: PolicyMode) throws -> CompiledPolicy {
        PolicyCompiler.compile(mode: mode, policy: try parse(body: body))
    }

    /// The policy document of a stored body.
    static func parse(body: String) throws -> PolicyConfig {
        try PolicyParser.parseConfig(JSONValue.stored(body)).value
    }
}
