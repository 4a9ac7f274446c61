// The list of `sluice` subcommands, kept in one place so that each feature adds one line here.
import ArgumentParser

extension Sluice {
    static let subcommandList: [any ParsableCommand.Type] = [
        RunCommand.self,
        PolicyCommand.self,
        TokenCommand.self,
        AuditCommand.self,
        DNSCacheCommand.self,
        StatsCommand.self,
        WiretapCommand.self,
        LabCommand.self,
    ]
}
