// Settings, the admin log and persisted audit findings in SQLite.
import Foundation
import GRDB

extension SQLiteStore {
    /// Performance mode is on unless an operator turned it off: see docs/api.md for why.
    static let performanceModeDefault = true

    public func performanceMode() async throws -> Bool {
        try await pool.read { db in
            guard
                let value = try String.fetchOne(
                    db, sql: "SELECT value FROM setting WHERE key = 'performance_mode'")
            else { return Self.performanceModeDefault }
            return value == "true"
        }
    }

    public func setPerformanceMode(_ enabled: Bool, actor: String) async throws {
        try await pool.write { db in
            let stored = try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = 'performance_mode'")
            let before = stored ?? String(Self.performanceModeDefault)
            try db.execute(
                sql: "INSERT INTO setting (key, value) VALUES ('performance_mode', ?) "
                    + "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [String(enabled)])
            try Self.log(
                db, actor: actor, action: "settings.update", target: "performance_mode", before: ["enabled": before],
                after: ["enabled": String(enabled)], at: Self.now())
        }
    }

    public func adminLog(limit: Int, beforeSeq: Int64?) async throws -> [AdminLogEntry] {
        try await pool.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM admin_log WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                arguments: [beforeSeq ?? Int64.max, max(0, limit)])
            return rows.map { row in
                AdminLogEntry(
                    seq: row["seq"], at: Self.date(row["at"]), actor: row["actor"], action: row["action"],
                    target: row["target"],
                    before: Self.decodeFields(row["before"]), after: Self.decodeFields(row["after"]))
            }
        }
    }

    public func mergeFindings(_ findings: [AuditFinding]) async throws {
        guard !findings.isEmpty else { return }
        let bound = maxFindings
        try await pool.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO finding (key, type, policy_id, source_group, rule, destination, port, proto, hostname,
                        icmp_type, icmp_code, enforced, first_seen, last_seen, count)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(key) DO UPDATE SET
                        first_seen = min(first_seen, excluded.first_seen),
                        last_seen = max(last_seen, excluded.last_seen),
                        count = count + excluded.count
                    """)
            for finding in findings {
                try statement.execute(arguments: [
                    finding.aggregationKey, finding.type, finding.policyID, finding.sourceGroup, finding.rule,
                    finding.destination, finding.port, finding.proto, finding.hostname, finding.icmpType,
                    finding.icmpCode, finding.enforced, Self.micros(finding.firstSeen),
                    Self.micros(finding.lastSeen), finding.count,
                ])
            }
            try db.execute(
                sql: """
                    DELETE FROM finding WHERE key IN
                        (SELECT key FROM finding ORDER BY last_seen DESC, key LIMIT -1 OFFSET ?)
                    """,
                arguments: [bound])
        }
    }

    public func findings(_ filter: FindingFilter) async throws -> [AuditFinding] {
        try await pool.read { db in
            var clauses: [String] = []
            var arguments = StatementArguments()
            if let type = filter.type {
                clauses.append("type = ?")
                _ = arguments.append(contentsOf: [type])
            }
            if let group = filter.sourceGroup {
                clauses.append("source_group = ?")
                _ = arguments.append(contentsOf: [group])
            }
            if let policyID = filter.policyID {
                clauses.append("policy_id = ?")
                _ = arguments.append(contentsOf: [policyID])
            }
            if let since = filter.since {
                clauses.append("last_seen >= ?")
                _ = arguments.append(contentsOf: [Self.micros(since)])
            }
            if let until = filter.until {
                clauses.append("last_seen <= ?")
                _ = arguments.append(contentsOf: [Self.micros(until)])
            }
            let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
            _ = arguments.append(contentsOf: [max(0, filter.limit)])
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM finding \(whereClause) ORDER BY last_seen DESC, key LIMIT ?",
                arguments: arguments)
            return rows.map { row in
                AuditFinding(
                    type: row["type"], policyID: row["policy_id"], sourceGroup: row["source_group"], rule: row["rule"],
                    destination: row["destination"], port: row["port"], proto: row["proto"],
                    hostname: row["hostname"], icmpType: row["icmp_type"], icmpCode: row["icmp_code"],
                    enforced: row["enforced"], firstSeen: Self.date(row["first_seen"]),
                    lastSeen: Self.date(row["last_seen"]),
                    count: row["count"])
            }
        }
    }
}
