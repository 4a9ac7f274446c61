// The single place where a stored policy body becomes a policy document again (the deployer
// compiles it; the DNS proxy and other observers evaluate it).
import Foundation
import SluicePolicy
import SluiceStore

/// Reads stored policy bodies. Stateless; callable from any task.
enum PolicyCompilation {
    /// The policy document of a stored body. The body was validated when written; a failure here
    /// means the parser tightened since, and is reported, never ignored.
    static func parse(body: String) throws -> PolicyConfig {
        try PolicyParser.parseConfig(JSONValue.stored(body)).value
    }
}
