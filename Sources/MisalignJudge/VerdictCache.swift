import Foundation
import MisalignIO

/// A persistent store of verdicts, so a rerun or a resumed sweep never pays twice.
///
/// SQLite through the system library (not a Swift wrapper package: no extra build time, and
/// the handful of statements here need no ORM). The database runs in WAL mode: readers never
/// block the writer, a crash at any moment leaves the last committed verdicts intact, and
/// several processes may share one file (SQLite's file locks, with a busy timeout so writers
/// queue instead of failing). `synchronous=NORMAL` skips the fsync per commit; after a power
/// cut the newest few verdicts may be missing, which costs only a repeat call.
///
/// Only verdicts are stored (score, status, raw answer, tokens); never request headers, so
/// no API key can reach the file. Errors are never stored: they are retried on the next run.
public final class VerdictCache: Sendable {
    public let path: String
    private let db: SQLiteDatabase

    public init(path: URL) throws(JudgeError) {
        self.path = path.path
        do {
            db = try SQLiteDatabase(path: path.path)
            try db.execute("""
                CREATE TABLE IF NOT EXISTS verdicts (
                    key TEXT PRIMARY KEY,
                    judge TEXT NOT NULL,
                    trait TEXT NOT NULL,
                    verdict TEXT NOT NULL,
                    created REAL NOT NULL
                )
                """)
            // The judge's cache identity beside its verdicts (added after the first release:
            // older files gain the column, their rows stay NULL), so a changed judge can be told
            // what changed instead of silently paying for every verdict again.
            let columns = Set(try db.query("PRAGMA table_info(verdicts)").compactMap { $0[1].text })
            if !columns.contains("identity") { try db.execute("ALTER TABLE verdicts ADD COLUMN identity TEXT") }
        } catch {
            throw Self.error(error, "prepare")
        }
    }

    /// The cache key: SHA-256 over the judge's identity (adapter, model, base URL,
    /// parameters), the rubric's hash, the question and the answer, as a JSON array so no
    /// choice of field contents can make two different tuples collide.
    public static func key(judge: any Judge, item: JudgeItem) -> String {
        let tuple = JSONValue.array([.string(judge.cacheIdentity), .string(item.rubric.sha256),
                                     .string(item.question), .string(item.answer)])
        return SHA256.hex(tuple.serialized())
    }

    /// The stored verdict for `key`, if any.
    public func get(_ key: String) throws(JudgeError) -> Verdict? {
        let rows: [[SQLValue]]
        do { rows = try db.query("SELECT verdict FROM verdicts WHERE key = ?1", [.text(key)]) } catch { throw Self.error(error, "read") }
        guard let row = rows.first else { return nil }
        guard let text = row[0].text else { throw .cache(path: path, reason: "read: stored verdict for key \(key) is empty") }
        let json: JSONValue
        do { json = try JSONValue.parse(text) } catch {
            throw .cache(path: path, reason: "stored verdict for key \(key) is not JSON: \(error)")
        }
        return try Verdict(json: json)
    }

    /// Stores `verdict` under `key`, with the judge's `cacheIdentity` when given. Refuses
    /// `.error` verdicts: those must be retried.
    public func put(_ key: String, _ verdict: Verdict, identity: String? = nil) throws(JudgeError) {
        guard verdict.status != .error else { return }
        do {
            try db.run("INSERT OR REPLACE INTO verdicts (key, judge, trait, verdict, created, identity) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                       [.text(key), .text(verdict.judge), .text(verdict.trait), .text(verdict.json().serialized()),
                        .double(Date().timeIntervalSince1970), identity.map { .text($0) } ?? .null])
        } catch { throw Self.error(error, "write") }
    }

    /// Cache identities stored for judge `id` (`Judge.id`, e.g. `openai:gpt-4.1-mini`) and how
    /// many verdicts each holds, most first. Rows written before identities were kept are left out.
    public func identities(judge id: String) throws(JudgeError) -> [(identity: String, count: Int)] {
        do {
            return try db.query("SELECT identity, COUNT(*) FROM verdicts WHERE judge = ?1 AND identity IS NOT NULL GROUP BY identity ORDER BY COUNT(*) DESC, identity",
                                [.text(id)]).map { ($0[0].text ?? "", $0[1].int ?? 0) }
        } catch { throw Self.error(error, "read") }
    }

    /// Number of stored verdicts.
    public func count() throws(JudgeError) -> Int {
        do { return try db.scalar("SELECT COUNT(*) FROM verdicts") } catch { throw Self.error(error, "count") }
    }

    /// Folds the write-ahead log into the main file (e.g. before copying the cache).
    public func checkpoint() throws(JudgeError) {
        do { try db.execute("PRAGMA wal_checkpoint(TRUNCATE)") } catch { throw Self.error(error, "checkpoint") }
    }

    /// The cache's error for what SQLite said, worded as before the wrapper was shared: a
    /// failed script names its start, a statement that would not compile `prepare`, one that
    /// failed while running what it was doing (`read`, `write`, `count`).
    static func error(_ e: SQLiteError, _ what: String) -> JudgeError {
        switch e.phase {
        case .open: return .cache(path: e.path, reason: e.message)
        case .exec: return .cache(path: e.path, reason: "\((e.sql ?? "").prefix(40)): \(e.message)")
        case .prepare: return .cache(path: e.path, reason: "prepare: \(e.message)")
        case .step: return .cache(path: e.path, reason: "\(what): \(e.message)")
        }
    }
}
