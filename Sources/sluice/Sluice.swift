// The `sluice` command: the gateway itself (`run`), the operator's dry run of a policy file
// (`policy check|eval`), and the tools around them. Each subcommand lives in its own file.
import ArgumentParser

@main
struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Sluice, an egress firewall gateway.",
        subcommands: Sluice.subcommandList
    )
}
