// `sluice lab up|down|status|exec`: a client network, the gateway and an upstream "internet" in
// network namespaces on this machine, with the gateway running. The README's way to try Sluice
// and the integration tests' harness. The work is done by SluiceLab's `LabController`; this file
// is the command line around it (docs/lab.md).
import ArgumentParser
import Foundation
import SluiceLab
import SluiceProcess

#if canImport(Glibc)
    import Glibc
#endif

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab", abstract: "A lab in network namespaces: client, gateway (sluice run) and upstream.",
        subcommands: [Up.self, Down.self, Status.self, Exec.self])

    /// The option every lab subcommand shares: which lab.
    struct Selection: ParsableArguments {
        @Option(help: "Prefix of the lab's namespaces and state directory (/run/PREFIX-lab); lets two labs coexist.")
        var prefix: String = "sluice"

        func validate() throws {
            if let problem = LabTopology.validatePrefix(prefix) { throw ValidationError(problem) }
        }

        func controller() -> LabController {
            LabController(topology: LabTopology(prefix: prefix)) { line in
                FileHandle.standardError.write(Data("lab: \(line)\n".utf8))
            }
        }
    }

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build the lab (removing any leftovers first) and start the gateway in it.")

        @OptionGroup var selection: Selection

        @Flag(help: "Print the lab's description as JSON (api, token, client, upstream, gateway).")
        var json = false

        @Option(help: "Policy envelope to load in the gateway (default: deploy/lab-policy.json, audit mode).")
        var policy: String?

        @Flag(help: "Build the namespaces and the upstream services only; do not start `sluice run`.")
        var noGateway = false

        @Option(help: "The sluice binary to run as the gateway (default: this one), e.g. another branch's build.")
        var gatewayBinary: String?

        @Option(
            parsing: .unconditionalSingleValue,
            help: "One more argument for the gateway's `sluice run` (repeatable), e.g. --gateway-arg --dns-learned-grace --gateway-arg 1.")
        var gatewayArg: [String] = []

        func run() throws {
            let controller = selection.controller()
            var options: LabController.GatewayOptions?
            if !noGateway {
                let sluice = try gatewayBinary ?? Self.ownExecutable()
                options = .init(sluice: sluice, policyFile: try policy ?? Self.defaultPolicyFile(),
                                extraArguments: gatewayArg)
            }
            let info: LabInfo
            do {
                info = try controller.up(gateway: options)
            } catch {
                throw LabFailure(
                    "lab up failed: \(error)\nlogs are in \(controller.paths.logs); "
                        + "`sluice lab down\(selection.prefix == "sluice" ? "" : " --prefix \(selection.prefix)")` "
                        + "removes what was built")
            }
            if json {
                print(try info.jsonText(), terminator: "")
            } else {
                print(Self.explain(info, prefix: selection.prefix), terminator: "")
            }
        }

        /// The running binary, so the gateway is the same build as the command that starts it.
        static func ownExecutable() throws -> String {
            try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        }

        /// deploy/lab-policy.json: next to the executable (an install), else in the source tree
        /// this binary was built from (development and tests).
        static func defaultPolicyFile() throws -> String {
            let executable = URL(fileURLWithPath: try ownExecutable()).deletingLastPathComponent()
            let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
            let candidates = [
                executable.appendingPathComponent("lab-policy.json").path,
                sourceRoot.appendingPathComponent("deploy/lab-policy.json").path,
            ]
            guard let found = candidates.first(where: FileManager.default.fileExists(atPath:)) else {
                throw ValidationError(
                    "no lab policy found (looked at \(candidates.joined(separator: ", "))); pass --policy")
            }
            return found
        }

        /// What a person reads after `up`: where things are and what to type next.
        static func explain(_ info: LabInfo, prefix: String) -> String {
            let flag = prefix == "sluice" ? "" : " --prefix \(prefix)"
            let exec = "sluice lab exec\(flag)"
            let gw = info.gateway, up = info.upstream
            let apiName = up.names["api"] ?? "", aliasName = up.names["alias"] ?? ""
            var lines = [
                "Sluice lab is up (state in \(info.stateDir)).",
                "",
                "  client    \(info.client.netns): \(info.client.ipv4), \(info.client.ipv6); "
                    + "routes and resolves via the gateway",
                "  gateway   \(gw.netns): \(gw.inside) \(gw.insideAddresses.joined(separator: ", ")) | "
                    + "\(gw.outside) \(gw.outsideAddresses.joined(separator: ", "))",
                "  upstream  \(up.netns): \(up.ipv4), \(up.ipv6); HTTP :\(up.httpPort), TLS :\(up.tlsPort), "
                    + "DNS :\(up.dnsPort) (zone \(up.dnsZone))",
                "",
            ]
            if let api = info.api, let token = info.token {
                let auth = "-H 'Authorization: Bearer \(token)'"
                lines += [
                    "Gateway: sluice run, dataplane \(gw.dataplane ?? "none"), "
                        + "DNS proxy \(gw.dnsProxy ? "on" : "off"), pid \(gw.pid.map(String.init) ?? "?")",
                    "  log     \(gw.log ?? "")",
                    "  policy  '\(info.policy ?? "")' (AUDIT mode: denies are recorded, not enforced)",
                    "  API     \(api)   (reachable from the client and gateway namespaces)",
                    "  token   \(token)",
                    "",
                    "Try it:",
                    "  \(exec) client -- curl -s \(auth) \(api)/api/v1/policies",
                    "  \(exec) client -- curl -s \(auth) \(api)/api/v1/audit/findings",
                    "  \(exec) client -- curl -s http://\(apiName)/",
                    "  \(exec) client -- curl -s --cacert \(up.caCertificate) https://\(apiName)/",
                    "  \(exec) client -- kdig @\(info.client.resolvers[0]) \(aliasName) A",
                    "  \(exec) gateway -- kdig @\(up.ipv4) \(aliasName) A    (the upstream's own DNS server)",
                ]
            } else {
                lines.append("No gateway (--no-gateway). Start one yourself: \(exec) gateway -- sluice run ...")
            }
            for warning in info.warnings {
                lines += ["", "!!! WARNING: \(warning)"]
            }
            lines += [
                "",
                "Inside a namespace: \(exec) client|gateway|upstream -- CMD",
                "  (SLUICE_API, SLUICE_TOKEN and SLUICE_LAB_CA are set there; no CMD gives a shell)",
                "Take it all down: sluice lab down\(flag)",
            ]
            return lines.joined(separator: "\n") + "\n"
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the lab's processes and remove its namespaces, links and state (idempotent).")

        @OptionGroup var selection: Selection

        func run() throws {
            let left = try selection.controller().down()
            guard left.isEmpty else { throw LabFailure("lab down left: \(left.joined(separator: ", "))") }
            print("lab \(selection.prefix) is down")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the lab's namespaces, processes and API.")

        @OptionGroup var selection: Selection

        func run() throws {
            let controller = selection.controller()
            for line in controller.status() { print(line) }
            if let info = controller.savedInfo() {
                print("api: \(info.api ?? "none (no gateway)")")
                print("token: \(info.token ?? "none")")
                for warning in info.warnings { print("WARNING: \(warning)") }
                print("description: \(controller.paths.info)")
            } else {
                print("no complete lab (no \(controller.paths.info)); `sluice lab up` builds one")
                throw ExitCode(1)
            }
        }
    }

    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command in a lab namespace (default: a shell), e.g. `sluice lab exec client -- curl ...`.")

        @OptionGroup var selection: Selection

        @Argument(help: "client, gateway or upstream.")
        var side: Side

        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
        var command: [String] = []

        enum Side: String, ExpressibleByArgument, CaseIterable {
            case client, gateway, upstream
        }

        func run() throws {
            let controller = selection.controller()
            let topology = controller.topology
            let namespace: String
            switch side {
            case .client: namespace = topology.client.namespace
            case .gateway: namespace = topology.gatewayInside.namespace
            case .upstream: namespace = topology.upstream.namespace
            }
            guard controller.namespaceExists(namespace) else {
                throw LabFailure("namespace \(namespace) does not exist: run `sluice lab up` first")
            }
            var argv = command.first == "--" ? Array(command.dropFirst()) : command
            if argv.isEmpty { argv = [ProcessInfo.processInfo.environment["SHELL"] ?? "/bin/bash"] }
            // What scripts in the lab need most, so they do not parse lab.json themselves.
            if let info = controller.savedInfo() {
                if let api = info.api { setenv("SLUICE_API", api, 1) }
                if let token = info.token { setenv("SLUICE_TOKEN", token, 1) }
                setenv("SLUICE_LAB_CA", info.upstream.caCertificate, 1)
            }
            // exec, not a child: the command gets the terminal, signals and exit status directly.
            let full = ["ip", "netns", "exec", namespace] + argv
            let ip = try Subprocess.locate("ip")
            var cArgs = full.map { strdup($0) } + [nil]
            execv(ip, &cArgs)
            throw LabFailure("could not exec \(ip): \(String(cString: strerror(errno)))")
        }
    }
}

/// A lab failure whose text is the whole message (no "Error:" decoration needed beyond it).
struct LabFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
