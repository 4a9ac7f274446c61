// `sluice lab up/down/status` as operations: build the network from `LabTopology.networkPlan()`,
// write the upstream's files, start its services and the gateway as detached processes whose
// pids and logs live in the state directory, and take all of it down again. `up` always tears
// down first, so it starts clean after a crash; both are idempotent.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Brings the lab up and down. Not thread-safe: one operation at a time, from one thread.
public struct LabController {
    /// The lab's shape.
    public var topology: LabTopology
    /// Where its state lives.
    public var paths: LabPaths
    /// How commands run.
    public var runner: any CommandRunning
    /// Progress lines (stderr in the CLI, so stdout stays the result).
    public var progress: (String) -> Void

    /// A controller for `topology`.
    public init(
        topology: LabTopology, runner: any CommandRunning = SystemCommandRunner(),
        progress: @escaping (String) -> Void = { _ in }
    ) {
        self.topology = topology
        self.paths = LabPaths(topology)
        self.runner = runner
        self.progress = progress
    }

    /// What `up` needs to start the gateway; nil for `--no-gateway`.
    public struct GatewayOptions {
        /// The sluice executable (the running one, so the gateway is the same build as the CLI).
        public var sluice: String
        /// The policy file (envelope) to load through the API.
        public var policyFile: String
        /// Appended to the gateway's `sluice run` command line (tests: short DNS grace, for instance).
        public var extraArguments: [String]

        /// Options for the gateway.
        public init(sluice: String, policyFile: String, extraArguments: [String] = []) {
            self.sluice = sluice
            self.policyFile = policyFile
            self.extraArguments = extraArguments
        }
    }

    /// Builds the lab from nothing (after removing any leftovers) and returns its description.
    public func up(gateway: GatewayOptions?) throws -> LabInfo {
        try requireRoot()
        try down(quiet: true)
        let fm = FileManager.default
        for directory in [paths.root, paths.pids, paths.logs, paths.nsd, paths.www, paths.tls] {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try fm.createDirectory(
            atPath: (topology.clientResolvConfPath as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true)
        try topology.clientResolvConf.write(toFile: topology.clientResolvConfPath, atomically: true, encoding: .utf8)

        progress("creating namespaces \(topology.namespaces.joined(separator: ", ")) and their veth pairs")
        try runner.execute(topology.networkPlan())

        progress("making the lab CA and the upstream's certificates")
        try runner.execute(topology.certificatePlan(paths))
        try topology.zoneFile(serial: Int(Date().timeIntervalSince1970))
            .write(toFile: "\(paths.nsd)/\(topology.zone).zone", atomically: true, encoding: .utf8)
        try topology.nsdConfiguration(paths).write(toFile: "\(paths.nsd)/nsd.conf", atomically: true, encoding: .utf8)
        try topology.indexPage.write(toFile: "\(paths.www)/index.html", atomically: true, encoding: .utf8)

        for service in [LabService.dns, .http, .tls] {
            let pid = try start(service, topology.serviceCommand(service, paths), in: topology.upstream.namespace)
            try waitUntilListening(service, pid: pid, timeout: 10)
            progress("\(service.rawValue) is up in \(topology.upstream.namespace) (pid \(pid))")
        }

        var info = topology.baseInfo(paths)
        if let gateway {
            try startGateway(gateway, into: &info)
        }
        try info.jsonText().write(toFile: paths.info, atomically: true, encoding: .utf8)
        return info
    }

    /// Stops every process of the lab (gateway first, so it can detach XDP and remove its nftables
    /// rules), deletes the namespaces and the state. Fine to run on a lab that is half there or gone.
    /// Returns what was left that it could not remove (empty when clean).
    @discardableResult
    public func down(quiet: Bool = false) throws -> [String] {
        try requireRoot()
        for service in [LabService.gateway, .tls, .http, .dns] {
            guard let text = try? String(contentsOfFile: paths.pidFile(service.rawValue), encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { continue }
            // A pid file can outlive its process and the pid can be reused by now: only a process
            // whose network namespace is one of the lab's is ours to stop.
            guard labNamespace(ofProcess: pid) != nil else { continue }
            if !quiet { progress("stopping \(service.rawValue) (pid \(pid))") }
            stop(pid, group: true, grace: service == .gateway ? 10 : 3)
        }
        // Anything else still inside a lab namespace: shells from `lab exec`, a gateway whose pid
        // file is gone, leftovers of a crashed `up`. They were started in the lab, so they end with it.
        for namespace in topology.namespaces where namespaceExists(namespace) {
            let result = try runner.run(["ip", "netns", "pids", namespace])
            for pid in result.stdout.split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) {
                if !quiet { progress("stopping pid \(pid) left in \(namespace)") }
                stop(pid, group: false, grace: 3)
            }
        }
        let existed = topology.namespaces.filter(namespaceExists)
        if !quiet && !existed.isEmpty { progress("deleting namespaces \(existed.joined(separator: ", "))") }
        try runner.execute(topology.teardownPlan())
        let fm = FileManager.default
        for namespace in topology.namespaces {
            try? fm.removeItem(atPath: "/etc/netns/\(namespace)")
        }
        try? fm.removeItem(atPath: paths.root)
        return leftovers()
    }

    /// What of the lab exists now: namespaces, the state directory, resolver files. Empty when gone.
    public func leftovers() -> [String] {
        var left = topology.namespaces.filter(namespaceExists).map { "namespace \($0)" }
        let fm = FileManager.default
        if fm.fileExists(atPath: paths.root) { left.append("state directory \(paths.root)") }
        for namespace in topology.namespaces where fm.fileExists(atPath: "/etc/netns/\(namespace)") {
            left.append("/etc/netns/\(namespace)")
        }
        return left
    }

    /// One line per namespace and service: whether it exists or runs.
    public func status() -> [String] {
        var lines: [String] = []
        for namespace in topology.namespaces {
            lines.append("namespace \(namespace): \(namespaceExists(namespace) ? "present" : "absent")")
        }
        for service in LabService.allCases {
            guard let text = try? String(contentsOfFile: paths.pidFile(service.rawValue), encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else {
                lines.append("\(service.rawValue): not started")
                continue
            }
            let running = isAlive(pid) && labNamespace(ofProcess: pid) != nil
            let log = paths.logFile(service.rawValue)
            lines.append("\(service.rawValue): pid \(pid) \(running ? "running" : "NOT RUNNING"), log \(log)")
        }
        return lines
    }

    /// The saved description of the running lab, if `up` finished.
    public func savedInfo() -> LabInfo? {
        guard let data = FileManager.default.contents(atPath: paths.info) else { return nil }
        return try? JSONDecoder().decode(LabInfo.self, from: data)
    }

    /// Whether `/run/netns/<name>` exists (what `ip netns list` reads).
    public func namespaceExists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: "/run/netns/\(name)")
    }

    // MARK: - Gateway

    private func startGateway(_ options: GatewayOptions, into info: inout LabInfo) throws {
        let fm = FileManager.default
        guard fm.fileExists(atPath: options.policyFile) else {
            throw LabError("policy file \(options.policyFile) does not exist (pass --policy FILE)")
        }
        let policyName = try Self.policyName(ofFile: options.policyFile)
        try fm.createDirectory(atPath: paths.gatewayData, withIntermediateDirectories: true)
        // The token first: it goes straight into the store, before `sluice run` opens it.
        let token = try runner.check([
            options.sluice, "token", "create", "--data-dir", paths.gatewayData, "--role", "admin",
        ])
        .trimmingCharacters(in: .whitespacesAndNewlines)
        _ = fm.createFile(
            atPath: paths.token, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600])

        let help = try runner.run([options.sluice, "run", "--help"])
        var launch = GatewayLaunch(
            sluice: options.sluice, runHelp: help.stdout + help.stderr, topology: topology, paths: paths)
        launch.argv += options.extraArguments
        for warning in launch.warnings { progress("WARNING: \(warning)") }
        let pid = try start(.gateway, launch.argv, in: topology.gatewayInside.namespace)
        try waitUntilListening(.gateway, pid: pid, timeout: 60)
        progress("gateway is up in \(topology.gatewayInside.namespace) (pid \(pid), dataplane \(launch.dataplane))")

        // Through the API, not `--policy`: the store is the source of truth, the policy shows in
        // `GET /policies`, and the same path carries it to the dataplane as any operator change.
        let url = "\(topology.apiURL)/api/v1/policies/by-name/\(policyName)"
        let put = try runner.run([
            "ip", "netns", "exec", topology.gatewayInside.namespace,
            "curl", "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", "-X", "PUT",
            "-H", "Authorization: Bearer \(token)", "-H", "Content-Type: application/json",
            "--data-binary", "@\(options.policyFile)", url,
        ])
        let code = put.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard put.status == 0, code == "200" || code == "201" else {
            throw LabError("loading \(options.policyFile) with PUT \(url) failed (HTTP \(code)): \(put.stderr)")
        }
        progress("policy '\(policyName)' loaded from \(options.policyFile)")

        info.api = topology.apiURL
        info.token = token
        info.policy = policyName
        info.gateway.dataplane = launch.dataplane
        info.gateway.dnsProxy = launch.dnsProxy
        info.gateway.pid = pid
        info.gateway.log = paths.logFile(LabService.gateway.rawValue)
        info.gateway.dataDir = paths.gatewayData
        info.warnings = launch.warnings
    }

    /// The `name` of a policy envelope file (the lab loads it under that name), `lab` when absent.
    public static func policyName(ofFile path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw LabError("\(path) is not a JSON policy envelope ({\"mode\", \"name\", \"policy\"})") }
        return object["name"] as? String ?? "lab"
    }

    // MARK: - Processes

    private func start(_ service: LabService, _ argv: [String], in namespace: String) throws -> Int32 {
        try runner.spawnDetached(
            ["ip", "netns", "exec", namespace] + argv,
            log: paths.logFile(service.rawValue), pidFile: paths.pidFile(service.rawValue))
    }

    // Ready means listening: the probe asks `ss` in the service's namespace. A process that died
    // meanwhile fails at once, with the end of its log.
    private func waitUntilListening(_ service: LabService, pid: Int32, timeout: TimeInterval) throws {
        let probe = topology.readinessProbe(service)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let result = try runner.run([
                "ip", "netns", "exec", probe.namespace, "ss", "-H", probe.udp ? "-lun" : "-ltn",
                "sport = :\(probe.port)",
            ])
            if result.status == 0 && !result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return }
            let log = paths.logFile(service.rawValue)
            if !isAlive(pid) {
                throw LabError("\(service.rawValue) exited during start; the end of \(log):\n\(tail(log))")
            }
            if Date() > deadline {
                throw LabError(
                    "\(service.rawValue) (pid \(pid)) is not listening on port \(probe.port) after \(Int(timeout)) s; "
                        + "the end of \(log):\n\(tail(log))")
            }
            usleep(100_000)
        }
    }

    private func tail(_ path: String, lines: Int = 15) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no log)"
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    // SIGTERM (to the whole process group when it leads one), then SIGKILL after `grace` seconds.
    private func stop(_ pid: Int32, group: Bool, grace: TimeInterval) {
        let target = group && getpgid(pid) == pid ? -pid : pid
        kill(target, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while isAlive(pid) && Date() < deadline { usleep(50_000) }
        if isAlive(pid) {
            progress("pid \(pid) ignored SIGTERM for \(Int(grace)) s; sending SIGKILL")
            kill(target, SIGKILL)
            let hard = Date().addingTimeInterval(2)
            while isAlive(pid) && Date() < hard { usleep(50_000) }
        }
    }

    // Alive and not a zombie: processes the lab detaches are reparented, and a reaper that is slow
    // (or a container init that never reaps) must not make `down` wait for the dead.
    private func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    // The lab namespace `pid` lives in (by the nsfs inode of /proc/PID/ns/net), or nil.
    private func labNamespace(ofProcess pid: Int32) -> String? {
        guard let mine = Self.inode("/proc/\(pid)/ns/net") else { return nil }
        return topology.namespaces.first { name in
            guard let other = Self.inode("/run/netns/\(name)") else { return false }
            return other == mine
        }
    }

    private static func inode(_ path: String) -> (dev_t, ino_t)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (info.st_dev, info.st_ino)
    }

    private func requireRoot() throws {
        guard geteuid() == 0 else {
            throw LabError("the lab needs root (network namespaces, veth pairs, /run and /etc/netns); run it with sudo")
        }
    }
}
