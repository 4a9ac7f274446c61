// What runs in the upstream namespace, as data: the state directory's layout, the DNS zone and
// nsd's configuration, the lab CA and server certificates (openssl commands), and the argv of
// each long-running service. `LabController` writes the files and starts the processes.
import Foundation

/// Paths under the lab's state directory (`/run/<prefix>-lab`: tmpfs, so a reboot, which also
/// drops the namespaces, drops the state with them).
public struct LabPaths: Sendable, Equatable {
    /// The state directory itself.
    public var root: String

    /// The state directory of the given topology.
    public init(_ topology: LabTopology) { root = topology.stateDirectory }

    /// `<pid>` of each process the lab started, one file per service.
    public var pids: String { "\(root)/pids" }
    /// Each service's stdout and stderr.
    public var logs: String { "\(root)/logs" }
    /// nsd's configuration, zone file and scratch files.
    public var nsd: String { "\(root)/nsd" }
    /// What the HTTP server serves.
    public var www: String { "\(root)/www" }
    /// The lab CA and the upstream's certificates and keys.
    public var tls: String { "\(root)/tls" }
    /// The gateway's `--data-dir` (store, findings).
    public var gatewayData: String { "\(root)/gateway" }
    /// The admin token, mode 0600.
    public var token: String { "\(root)/token" }
    /// What `up --json` printed, read back by `status` and `exec`.
    public var info: String { "\(root)/lab.json" }
    /// The lab CA certificate that clients pass to curl `--cacert`.
    public var caCertificate: String { "\(tls)/ca.pem" }

    /// The pid file of a service.
    public func pidFile(_ service: String) -> String { "\(pids)/\(service).pid" }
    /// The log file of a service.
    public func logFile(_ service: String) -> String { "\(logs)/\(service).log" }
}

/// Names of the services the lab starts; also the names of their pid and log files.
public enum LabService: String, CaseIterable, Sendable {
    case dns = "nsd"
    case http
    case tls
    case gateway
}

extension LabTopology {
    /// The zone file of `zone`: the upstream's names, a CNAME chain, a short-TTL name and the
    /// address the example policy denies. Serial is seconds since 1970 so every `up` is newer.
    public func zoneFile(serial: Int) -> String {
        let up = upstream
        let blocked = upstreamBlocked
        return """
            ; Written by `sluice lab up`. Served by nsd in \(upstream.namespace) on port \(dnsPort).
            $ORIGIN \(zone).
            $TTL 60
            @        IN SOA   ns.\(zone). hostmaster.\(zone). \(serial) 3600 600 86400 30
            @        IN NS    ns.\(zone).
            ns       IN A     \(up.ipv4.address)
            ns       IN AAAA  \(up.ipv6.address)
            upstream IN A     \(up.ipv4.address)
            upstream IN AAAA  \(up.ipv6.address)
            ; The allowed service (HTTP on \(httpPort), TLS on \(tlsPort)).
            api      IN A     \(up.ipv4.address)
            api      IN AAAA  \(up.ipv6.address)
            ; A chain: alias -> www -> api.
            www      IN CNAME api.\(zone).
            alias    IN CNAME www.\(zone).
            ; Expires quickly: for tests of learned addresses running out.
            short \(shortTTL) IN A   \(up.ipv4.address)
            short \(shortTTL) IN AAAA \(up.ipv6.address)
            ; Denied by the example policy; its own address and certificate.
            blocked  IN A     \(blocked.ipv4.address)
            blocked  IN AAAA  \(blocked.ipv6.address)

            """
    }

    /// nsd's configuration: foreground-friendly, no privilege drop or chroot (the state directory
    /// is root's), no remote control, everything it writes kept inside `paths.nsd`.
    public func nsdConfiguration(_ paths: LabPaths) -> String {
        """
        # Written by `sluice lab up`.
        server:
            ip-address: \(upstream.ipv4.address)
            ip-address: \(upstream.ipv6.address)
            port: \(dnsPort)
            server-count: 1
            username: ""
            chroot: ""
            zonesdir: "\(paths.nsd)"
            zonelistfile: "\(paths.nsd)/zone.list"
            xfrdfile: "\(paths.nsd)/xfrd.state"
            pidfile: "\(paths.nsd)/nsd.pid"
            database: ""
            verbosity: 1
            hide-version: yes
        remote-control:
            control-enable: no
        zone:
            name: "\(zone)"
            zonefile: "\(zone).zone"

        """
    }

    /// openssl commands making a fresh lab CA and two server certificates signed by it: one for the
    /// allowed names (`api`, `www`, `alias`, `short`) and one for `blocked`, so that TLS tests can
    /// tell them apart by SNI, SAN, CN and fingerprint. P-256 keys: fast to make on every `up`.
    public func certificatePlan(_ paths: LabPaths) -> [LabStep] {
        let dir = paths.tls
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30"]
        var steps = [
            LabStep(
                ["openssl", "req", "-x509"] + key
                    + [
                        "-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.pem", "-subj", "/O=Sluice Lab/CN=Sluice Lab CA",
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    ])
        ]
        let allowed = [apiName, wwwName, aliasName, shortName]
        for (file, names, ipv4) in [("api", allowed, upstream.ipv4), ("blocked", [blockedName], upstreamBlocked.ipv4)] {
            let san = (names.map { "DNS:\($0)" } + ["IP:\(ipv4.address)"]).joined(separator: ",")
            steps.append(
                LabStep(
                    ["openssl", "req", "-x509", "-CA", "\(dir)/ca.pem", "-CAkey", "\(dir)/ca.key"] + key
                        + [
                            "-keyout", "\(dir)/\(file).key", "-out", "\(dir)/\(file).pem",
                            "-subj", "/O=Sluice Lab/CN=\(names[0])",
                            "-addext", "subjectAltName=\(san)",
                            "-addext", "basicConstraints=critical,CA:FALSE",
                            "-addext", "extendedKeyUsage=serverAuth",
                        ]))
        }
        return steps
    }

    /// The argv of a service, to be run inside its namespace (the controller adds `ip netns exec`).
    /// `sluice run` is not here: `GatewayLaunch` decides its arguments from what the binary supports.
    public func serviceCommand(_ service: LabService, _ paths: LabPaths) -> [String] {
        switch service {
        case .dns:
            // -d: stay in the foreground so the recorded pid is nsd's own (it still forks its workers,
            // which share its process group and stop with it).
            return ["nsd", "-d", "-c", "\(paths.nsd)/nsd.conf"]
        case .http:
            // Debian's python3 (scripts/setup.sh), not whatever PATH finds first. `--bind ::` is
            // dual-stack in http.server (it clears IPV6_V6ONLY): one server for every upstream address.
            return ["/usr/bin/python3", "-m", "http.server", "\(httpPort)", "--bind", "::", "--directory", paths.www]
        case .tls:
            // -www answers each request with a status page (handshake details), so curl gets a 200.
            // -servername/-cert2: a ClientHello naming `blocked` gets the second certificate.
            // A bare port listens dual-stack; `[::]:PORT` would be IPv6 only.
            let dir = paths.tls
            return [
                "openssl", "s_server", "-accept", "\(tlsPort)", "-www", "-quiet",
                "-cert", "\(dir)/api.pem", "-key", "\(dir)/api.key", "-cert_chain", "\(dir)/ca.pem",
                "-servername", blockedName, "-cert2", "\(dir)/blocked.pem", "-key2", "\(dir)/blocked.key",
            ]
        case .gateway:
            preconditionFailure("the gateway's command comes from GatewayLaunch")
        }
    }

    /// The listening socket that shows a service is ready: (`ss` protocol flag, port, namespace).
    public func readinessProbe(_ service: LabService) -> (udp: Bool, port: Int, namespace: String) {
        switch service {
        case .dns: return (true, dnsPort, upstream.namespace)
        case .http: return (false, httpPort, upstream.namespace)
        case .tls: return (false, tlsPort, upstream.namespace)
        case .gateway: return (false, apiPort, gatewayInside.namespace)
        }
    }

    /// The page the HTTP server serves at `/`.
    public var indexPage: String {
        "sluice lab upstream: \(apiName) (\(upstream.ipv4.address), \(upstream.ipv6.address))\n"
    }
}
