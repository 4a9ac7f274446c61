// `forward-bench gateway`: the real Dataplane (XDP, AF_XDP workers, nftables block) without the
// management plane, so the release build is quick: bench/gateway-forward.sh runs it in the
// gateway namespace. Runs until stdin closes, then prints the counters and stops.
import Foundation
import SluiceDataplane
import SluicePolicy

enum GatewayMode {
    static func run(_ arguments: [String]) async throws {
        func value(_ name: String) -> String? {
            arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
        }
        guard let inside = value("--inside"), let outside = value("--outside"), let policyPath = value("--policy")
        else {
            say("usage: forward-bench gateway --inside IF --outside IF --policy FILE [--queues N] [--cores LIST] [--flow-table-size N] [--busy-poll] [--no-offload]")
            exit(2)
        }
        var configuration = DataplaneConfiguration(inside: inside, outside: outside)
        configuration.queues = value("--queues").flatMap { Int($0) }
        if arguments.contains("--busy-poll") { configuration.idleTimeoutMilliseconds = 0 }
        // bench/run.sh: worker cores (the generator gets the others) and the flow table size (memory per flow).
        configuration.cores = value("--cores").map { $0.split(separator: ",").compactMap { Int($0) } }
        if let size = value("--flow-table-size").flatMap({ Int($0) }) { configuration.flowTable.capacity = size }
        if arguments.contains("--no-offload") { configuration.offload = false }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: policyPath))
        let parsed = try PolicyParser.parseDocument(try JSONValue.parse(Array(bytes)))
        let dataplane = Dataplane(configuration, learned: NoLearnedAddresses(), log: { say($0) })
        try dataplane.start()
        let confirmed = await dataplane.publish(PolicyCompiler.compile(parsed.value), tag: "bench")
        say("ready (policy confirmed: \(confirmed))")
        while let line = readLine(), !line.isEmpty {}
        let counters = dataplane.counters()
        for name in counters.keys.sorted() where counters[name]! > 0 { say("\(name) \(counters[name]!)") }
        dataplane.stop()
    }
}
