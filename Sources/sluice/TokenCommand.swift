// `sluice token create`: makes an API token directly in the data directory's store, without the
// API (how the first admin token comes to exist). Prints the token alone on stdout, for scripts:
// `TOKEN=$(sluice token create --data-dir /var/lib/sluice --role admin)`.
import ArgumentParser
import Foundation
import SluiceStore

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Manage API tokens on this node.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token for a service account (created if missing) and print it on stdout.")

        @Option(help: "The node's data directory.")
        var dataDir: String

        @Option(help: "Role of the service account: admin or readonly.")
        var role: Role

        @Option(help: "Service account name (default: the role's name).")
        var name: String?

        @Option(help: "A label for the token.")
        var label: String?

        func run() async throws {
            let store = try SQLiteStore(directory: URL(fileURLWithPath: dataDir))
            let actor = "local:\(ProcessInfo.processInfo.environment["USER"] ?? "root")"
            let accountName = name ?? role.rawValue
            let account: ServiceAccount
            if let existing = try await store.serviceAccount(named: accountName) {
                guard existing.role == role, existing.disabledAt == nil else {
                    throw ValidationError(
                        "service account '\(accountName)' exists with role \(existing.role.rawValue)"
                            + (existing.disabledAt == nil ? "" : " and is disabled") + "; choose another --name")
                }
                account = existing
            } else {
                account = try await store.createServiceAccount(name: accountName, role: role, actor: actor)
            }
            let (_, text) = try await APIToken.issue(in: store, accountID: account.id, name: label, actor: actor)
            print(text)
        }
    }
}

extension Role: ExpressibleByArgument {}
