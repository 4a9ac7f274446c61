// `sluice policy apply|list|get|delete|mode|history`: the policies of a running gateway, over
// the management API. `apply` checks the file locally first (same parser as the server, so the
// same paths in the messages) and writes by stable name, as the rollout guide does; `mode` is
// the guide's one-field flip: it reads the policy, changes only `mode`, and writes it back with
// If-Match, so a concurrent edit is refused instead of overwritten.
import ArgumentParser
import Foundation
import SluiceAPI
import SluicePolicy

extension PolicyMode: ExpressibleByArgument {}

/// The path of a policy by name, percent-encoded (names are URL-safe already; this is belt and braces).
func byNamePath(_ name: String) -> String {
    "/api/v1/policies/by-name/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name)
}

/// One line about a policy record.
func describePolicy(_ record: JSONValue) -> String {
    let name = record["name"]?.text ?? "(unnamed)"
    let active = record["active"] == .bool(true) ? "active" : "inactive"
    return "\(name): version \(record["version"]?.text ?? "?"), mode \(record["mode"]?.text ?? "?"), \(active), "
        + "id \(record["id"]?.text ?? "?")"
}

/// The deployment part of a write response, in words.
func describeDeployment(_ record: JSONValue) -> String? {
    guard let deployment = record["deployment"] else { return nil }
    var text = "generation \(deployment["generation"]?.text ?? "?"), dataplane \(deployment["dataplane"]?.text ?? "?")"
    if deployment["compiled"] == .bool(false) { text += ", NOT compiled" }
    if let error = deployment["error"]?.text { text += " (\(error))" }
    return text
}

struct PolicyApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Write a policy file to the gateway by name (PUT /api/v1/policies/by-name/NAME).",
        discussion: """
        The file is the request envelope or a bare policy, JSON or YAML; it is checked locally first.
        --name and --mode override the envelope's; a bare policy needs both. Start with --mode audit.
        """
    )

    @Option(name: .shortAndLong, help: "The policy file, or - for standard input.")
    var file: String

    @Option(help: "The policy's stable name (default: the envelope's name).")
    var name: String?

    @Option(help: "disabled, audit or enforce (default: the envelope's mode).")
    var mode: PolicyMode?

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let document: (tree: JSONValue, parsed: ParsedPolicy<PolicyRequest>)
        do {
            document = try PolicyFile.loadDocument(file)
        } catch {
            reportInvalid(file, error)
            throw ExitCode(1)
        }
        let envelope = document.tree["policy"] != nil
        guard let name = name ?? document.parsed.value.name else {
            throw ValidationError("give the policy a name with --name (the file has none)")
        }
        guard let mode = mode ?? (envelope ? document.parsed.value.mode : nil) else {
            throw ValidationError("a bare policy file has no mode: give --mode audit, enforce or disabled")
        }
        let body = JSONValue.object([
            ("mode", .string(mode.rawValue)), ("name", .string(name)),
            ("policy", document.tree["policy"] ?? document.tree),
        ])
        try await APIClient.run(client) { api in
            let reply = try await api.expect(.PUT, byNamePath(name), body: Array(body.jsonText.utf8))
            if client.json { return api.printJSON(reply) }
            let record = try reply.document()
            print("\(reply.status == 201 ? "created" : "replaced") \(describePolicy(record))")
            if let deployment = describeDeployment(record) { print("  deployed: \(deployment)") }
            for warning in record["warnings"]?.elements ?? [] {
                print("  warning: \(warning["path"]?.text ?? ""): \(warning["message"]?.text ?? "")")
            }
        }
    }
}

struct PolicyListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the gateway's policies.")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await APIClient.run(client) { api in
            let reply = try await api.expect(.GET, "/api/v1/policies")
            if client.json { return api.printJSON(reply) }
            let rows = (try reply.document()["policies"]?.elements ?? []).map { record in
                [
                    record["name"]?.text ?? "-", record["mode"]?.text ?? "?",
                    record["active"] == .bool(true) ? "yes" : "no", record["version"]?.text ?? "?",
                    record["updated_at"]?.text ?? "?", record["id"]?.text ?? "?",
                ]
            }
            printTable(["NAME", "MODE", "ACTIVE", "VERSION", "UPDATED", "ID"], rows)
        }
    }
}

struct PolicyGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Show one policy: its record, then the policy object.")

    @Argument(help: "The policy's name.")
    var name: String

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await APIClient.run(client) { api in
            let reply = try await api.expect(.GET, byNamePath(name))
            if client.json { return api.printJSON(reply) }
            let record = try reply.document()
            print(describePolicy(record))
            print("updated \(record["updated_at"]?.text ?? "?"), ETag \(reply.header("ETag") ?? "?")")
            print(record["policy"]?.prettyText ?? "{}")
        }
    }
}

struct PolicyDeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a policy and its history (If-Match on the version just read).")

    @Argument(help: "The policy's name.")
    var name: String

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await APIClient.run(client) { api in
            let current = try await api.expect(.GET, byNamePath(name))
            let record = try current.document()
            guard let id = record["id"]?.text else { throw ClientFailure(description: "the record has no id") }
            let headers = current.header("ETag").map { [("If-Match", $0)] } ?? []
            _ = try await api.expect(.DELETE, "/api/v1/policies/\(id)", headers: headers)
            if client.json { return print(#"{"deleted":"\#(id)"}"#) }
            print("deleted \(describePolicy(record))")
        }
    }
}

struct PolicyModeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mode",
        abstract: "Change only a policy's mode: promote to enforce, or flip back to audit or disabled.",
        discussion: """
        Reads the policy, changes only `mode`, and writes it back with If-Match on the version read: the
        policy object is sent back byte for byte as stored, and a concurrent change makes this fail (412)
        instead of being overwritten. Example: sluice policy mode office-egress enforce
        """
    )

    @Argument(help: "The policy's name.")
    var name: String

    @Argument(help: "The new mode: disabled, audit or enforce.")
    var mode: PolicyMode

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await APIClient.run(client) { api in
            let current = try await api.expect(.GET, byNamePath(name))
            let record = try current.document()
            if record["mode"]?.text == mode.rawValue {
                if client.json { return api.printJSON(current) }
                return print("\(name) is already in \(mode.rawValue) mode; nothing written")
            }
            guard let etag = current.header("ETag"), let policy = record["policy"] else {
                throw ClientFailure(description: "the server's record lacks an ETag or a policy")
            }
            let body = JSONValue.object([("mode", .string(mode.rawValue)), ("name", .string(name)), ("policy", policy)])
            let reply = try await api.send(.PUT, byNamePath(name), body: Array(body.jsonText.utf8),
                                           headers: [("If-Match", etag)])
            if reply.status == 412 {
                throw ClientFailure(description: "\(name) changed since it was read (If-Match \(etag) failed); "
                                    + "nothing written, run the command again")
            }
            guard (200..<300).contains(reply.status) else { throw APIClient.serverError(reply) }
            if client.json { return api.printJSON(reply) }
            let written = try reply.document()
            print("\(name): mode \(record["mode"]?.text ?? "?") → \(mode.rawValue), "
                  + "version \(record["version"]?.text ?? "?") → \(written["version"]?.text ?? "?")")
            if let deployment = describeDeployment(written) { print("  deployed: \(deployment)") }
        }
    }
}

struct PolicyHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Every version of a policy: who wrote it, when, and what changed.")

    @Argument(help: "The policy's name.")
    var name: String

    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await APIClient.run(client) { api in
            let record = try await api.expect(.GET, byNamePath(name)).document()
            guard let id = record["id"]?.text else { throw ClientFailure(description: "the record has no id") }
            let reply = try await api.expect(.GET, "/api/v1/policies/\(id)/versions")
            if client.json { return api.printJSON(reply) }
            var rows: [[String]] = []
            var previous: JSONValue?
            for version in try reply.document()["versions"]?.elements ?? [] {
                let change: String
                if let previous {
                    let policyChanged = previous["policy"] != version["policy"]
                    let modeChanged = previous["mode"] != version["mode"]
                    switch (policyChanged, modeChanged) {
                    case (false, true):
                        change = "mode \(previous["mode"]?.text ?? "?") → \(version["mode"]?.text ?? "?")"
                    case (true, true): change = "policy and mode changed"
                    case (true, false): change = "policy changed"
                    case (false, false): change = "rewritten unchanged"
                    }
                } else {
                    change = "created"
                }
                rows.append([
                    version["version"]?.text ?? "?", version["mode"]?.text ?? "?", version["created_at"]?.text ?? "?",
                    version["actor"]?.text ?? "?", change,
                ])
                previous = version
            }
            printTable(["VERSION", "MODE", "WRITTEN", "ACTOR", "CHANGE"], rows)
        }
    }
}
