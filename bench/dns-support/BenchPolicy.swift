// The DNS policy the DNS benchmarks judge every query by, shared so that dns-bench (end to end) and
// dns-state-bench (in process) measure the same evaluation: two source groups, the bench's clients in the
// second, a deny rule tried before the allow of the bench zone (with an L4 matcher, so answers teach
// bindings restricted to TCP 443).
import SluiceDNS
import SluicePolicy

/// The bench policy as the proxy uses it (policy id "bench", enforce mode).
public func benchDNSPolicy() throws -> DNSPolicy {
    let json = """
    {"mode": "enforce", "policy": {"source_groups": [
      {"id": "other", "priority": 1, "sources": {"cidrs": ["10.0.0.0/8"]}, "rules": [
        {"id": "x", "action": "allow", "match": {"dns_hostname": "*.example.com"}}]},
      {"id": "lab", "priority": 2, "sources": {"cidrs": ["127.0.0.0/8"]}, "rules": [
        {"id": "no-evil", "action": "deny", "match": {"dns_hostname": "evil.bench.test"}},
        {"id": "zone", "action": "allow", "match": {"dns_hostname": "*.bench.test", "proto": "tcp", "dst_ports": [443]}}
      ]}
    ]}}
    """
    let request = try PolicyParser.parseRequest(jsonBytes: Array(json.utf8)).value
    return DNSPolicy(policyID: "bench", mode: request.mode, config: request.policy)
}
