// The embedded store: one SQLite file under the data directory, opened through GRDB in WAL mode
// with synchronous=FULL, so that a commit that returned is on disk even across a power cut (the
// management plane writes rarely; an fsync per commit costs nothing that matters). The schema is
// built by DatabaseMigrator from v1 on; later versions append migrations, never edit old ones.
import Foundation
import GRDB

/// ManagementStore on SQLite. Safe to use from any task: GRDB's DatabasePool serializes writes and
/// runs reads concurrently on snapshots. Several processes may open the same file (the CLI's
/// `token create` next to a running `sluice run`); the busy timeout makes them wait for each other.
public final class SQLiteStore: ManagementStore {
    /// The file name of the database inside the data directory.
    public static let fileName = "sluice.sqlite"

    /// The most aggregated findings kept; the oldest (by last_seen) are dropped beyond it.
    public let maxFindings: Int

    let pool: DatabasePool

    /// Opens (creating if needed) the store in `directory`, which is created with mode 0700.
    public convenience init(directory: URL, maxFindings: Int = 10_000) throws {
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try self.init(path: directory.appendingPathComponent(Self.fileName).path, maxFindings: maxFindings)
    }

    /// Opens (creating if needed) the database file at `path` and migrates it to the latest schema.
    public init(path: String, maxFindings: Int = 10_000) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL is set by DatabasePool; FULL makes each commit fsync the WAL (see file header).
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        self.pool = try DatabasePool(path: path, configuration: configuration)
        self.maxFindings = maxFindings
        try Self.migrator.migrate(pool)
    }

    /// The schema history. Never edit a registered migration: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE policy (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT UNIQUE,
                        mode TEXT NOT NULL CHECK (mode IN ('disabled', 'audit', 'enforce')),
                        active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        version INTEGER NOT NULL CHECK (version >= 1),
                        body TEXT NOT NULL
                    );
                    -- The single-active invariant, enforced by the database itself.
                    CREATE UNIQUE INDEX policy_single_active ON policy(active) WHERE active = 1;
                    CREATE TABLE policy_version (
                        policy_id TEXT NOT NULL REFERENCES policy(id) ON DELETE CASCADE,
                        version INTEGER NOT NULL,
                        name TEXT,
                        mode TEXT NOT NULL,
                        body TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        actor TEXT NOT NULL,
                        PRIMARY KEY (policy_id, version)
                    );
                    CREATE TABLE setting (
                        key TEXT PRIMARY KEY NOT NULL,
                        value TEXT NOT NULL
                    );
                    CREATE TABLE service_account (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL UNIQUE,
                        role TEXT NOT NULL CHECK (role IN ('readonly', 'admin')),
                        created_at INTEGER NOT NULL,
                        disabled_at INTEGER
                    );
                    CREATE TABLE token (
                        id TEXT PRIMARY KEY NOT NULL,
                        account_id TEXT NOT NULL REFERENCES service_account(id),
                        name TEXT,
                        hash BLOB NOT NULL,
                        created_at INTEGER NOT NULL,
                        revoked_at INTEGER
                    );
                    CREATE INDEX token_account ON token(account_id);
                    CREATE TABLE admin_log (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        at INTEGER NOT NULL,
                        actor TEXT NOT NULL,
                        action TEXT NOT NULL,
                        target TEXT NOT NULL,
                        before TEXT,
                        after TEXT
                    );
                    CREATE TABLE finding (
                        key TEXT PRIMARY KEY NOT NULL,
                        type TEXT NOT NULL,
                        policy_id TEXT NOT NULL,
                        source_group TEXT,
                        rule TEXT,
                        destination TEXT,
                        port INTEGER,
                        proto TEXT,
                        hostname TEXT,
                        icmp_type INTEGER,
                        icmp_code INTEGER,
                        enforced INTEGER NOT NULL,
                        first_seen INTEGER NOT NULL,
                        last_seen INTEGER NOT NULL,
                        count INTEGER NOT NULL
                    );
                    CREATE INDEX finding_last_seen ON finding(last_seen);
                    """)
        }
        return migrator
    }

    /// The schema migrations applied to the open database, in order.
    public func appliedMigrations() throws -> [String] {
        try pool.read { db in try Self.migrator.appliedMigrations(db) }
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    /// Appends an admin log line inside the caller's transaction.
    static func log(
        _ db: Database, actor: String, action: String, target: String, before: [String: String]?,
        after: [String: String]?, at: Date
    ) throws {
        try db.execute(
            sql: "INSERT INTO admin_log (at, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [Self.micros(at), actor, action, target, encodeFields(before), encodeFields(after)])
    }

    static func encodeFields(_ fields: [String: String]?) -> String? {
        guard let fields else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(fields)).flatMap { String(decoding: $0, as: UTF8.self) }
    }

    static func decodeFields(_ text: String?) -> [String: String]? {
        guard let text else { return nil }
        return try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }

    /// The current time at the storage precision. Times are stored as INTEGER microseconds since
    /// 1970, so a Date made here reads back equal (a Double of seconds would not round-trip).
    static func now() -> Date { date(micros(Date())) }

    static func micros(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }

    static func date(_ micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }

    static func optionalDate(_ micros: Int64?) -> Date? { micros.map(date) }

    /// A fresh lowercase UUID, the id format of every record.
    static func newID() -> String { UUID().uuidString.lowercased() }
}

extension SQLiteStore {
    /// SQLite's `PRAGMA integrity_check` result: "ok" for a sound file.
    public func integrityCheck() throws -> String {
        try pool.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "no answer" }
    }
}
