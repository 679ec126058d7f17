import Foundation
import CSQLite
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
public final class VerdictCache: @unchecked Sendable {
    public let path: String
    private let db: OpaquePointer
    private let lock = NSLock()

    public init(path: URL) throws(JudgeError) {
        self.path = path.path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX
        guard sqlite3_open_v2(path.path, &handle, flags, nil) == SQLITE_OK, let handle else {
            let reason = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let handle { sqlite3_close(handle) }
            throw .cache(path: path.path, reason: reason)
        }
        db = handle
        sqlite3_busy_timeout(db, 30_000)
        do {
            try exec("PRAGMA journal_mode=WAL")
            try exec("PRAGMA synchronous=NORMAL")
            try exec("""
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
            if try !columns().contains("identity") { try exec("ALTER TABLE verdicts ADD COLUMN identity TEXT") }
        } catch {
            sqlite3_close(db)
            throw error
        }
    }

    deinit { sqlite3_close(db) }

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
        lock.lock(); defer { lock.unlock() }
        let stmt = try prepare("SELECT verdict FROM verdicts WHERE key = ?1")
        defer { sqlite3_finalize(stmt) }
        misalign_sqlite3_bind_text(stmt, 1, key, -1)
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_DONE { return nil }
        guard rc == SQLITE_ROW, let text = sqlite3_column_text(stmt, 0) else { throw failure("read") }
        let json: JSONValue
        do { json = try JSONValue.parse(String(cString: text)) } catch {
            throw .cache(path: path, reason: "stored verdict for key \(key) is not JSON: \(error)")
        }
        return try Verdict(json: json)
    }

    /// Stores `verdict` under `key`, with the judge's `cacheIdentity` when given. Refuses
    /// `.error` verdicts: those must be retried.
    public func put(_ key: String, _ verdict: Verdict, identity: String? = nil) throws(JudgeError) {
        guard verdict.status != .error else { return }
        lock.lock(); defer { lock.unlock() }
        let stmt = try prepare("INSERT OR REPLACE INTO verdicts (key, judge, trait, verdict, created, identity) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        defer { sqlite3_finalize(stmt) }
        misalign_sqlite3_bind_text(stmt, 1, key, -1)
        misalign_sqlite3_bind_text(stmt, 2, verdict.judge, -1)
        misalign_sqlite3_bind_text(stmt, 3, verdict.trait, -1)
        misalign_sqlite3_bind_text(stmt, 4, verdict.json().serialized(), -1)
        sqlite3_bind_double(stmt, 5, Date().timeIntervalSince1970)
        if let identity { misalign_sqlite3_bind_text(stmt, 6, identity, -1) } else { sqlite3_bind_null(stmt, 6) }
        guard sqlite3_step(stmt) == SQLITE_DONE else { throw failure("write") }
    }

    /// Cache identities stored for judge `id` (`Judge.id`, e.g. `openai:gpt-4.1-mini`) and how
    /// many verdicts each holds, most first. Rows written before identities were kept are left out.
    public func identities(judge id: String) throws(JudgeError) -> [(identity: String, count: Int)] {
        lock.lock(); defer { lock.unlock() }
        let stmt = try prepare("SELECT identity, COUNT(*) FROM verdicts WHERE judge = ?1 AND identity IS NOT NULL GROUP BY identity ORDER BY COUNT(*) DESC, identity")
        defer { sqlite3_finalize(stmt) }
        misalign_sqlite3_bind_text(stmt, 1, id, -1)
        var out: [(String, Int)] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW, let text = sqlite3_column_text(stmt, 0) else { throw failure("read") }
            out.append((String(cString: text), Int(sqlite3_column_int64(stmt, 1))))
        }
        return out
    }

    private func columns() throws(JudgeError) -> Set<String> {
        let stmt = try prepare("PRAGMA table_info(verdicts)")
        defer { sqlite3_finalize(stmt) }
        var out = Set<String>()
        while sqlite3_step(stmt) == SQLITE_ROW {
            if let name = sqlite3_column_text(stmt, 1) { out.insert(String(cString: name)) }
        }
        return out
    }

    /// Number of stored verdicts.
    public func count() throws(JudgeError) -> Int {
        lock.lock(); defer { lock.unlock() }
        let stmt = try prepare("SELECT COUNT(*) FROM verdicts")
        defer { sqlite3_finalize(stmt) }
        guard sqlite3_step(stmt) == SQLITE_ROW else { throw failure("count") }
        return Int(sqlite3_column_int64(stmt, 0))
    }

    /// Folds the write-ahead log into the main file (e.g. before copying the cache).
    public func checkpoint() throws(JudgeError) {
        lock.lock(); defer { lock.unlock() }
        try exec("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    private func exec(_ sql: String) throws(JudgeError) {
        var err: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &err) == SQLITE_OK else {
            let m = err.map { String(cString: $0) } ?? "unknown"
            sqlite3_free(err)
            throw .cache(path: path, reason: "\(sql.prefix(40)): \(m)")
        }
    }

    private func prepare(_ sql: String) throws(JudgeError) -> OpaquePointer {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else { throw failure("prepare") }
        return stmt
    }

    private func failure(_ what: String) -> JudgeError {
        .cache(path: path, reason: "\(what): \(String(cString: sqlite3_errmsg(db)))")
    }
}
