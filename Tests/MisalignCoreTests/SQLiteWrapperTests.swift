import Testing
import Foundation
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// MisalignIO's one SQLite wrapper (`SQLiteDatabase`), its `SQLiteError`, and the two users'
/// mappings of it: the run store's `PipelineError`s and the verdict cache's `JudgeError.cache`.
@Suite struct SQLiteWrapperTests {
    @Test func valuesRoundTripAndTransactionsAreAllOrNothing() throws {
        let dir = Fixtures.temporaryDirectory("sqlite-wrapper")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.sqlite").path
        let db = try SQLiteDatabase(path: path)
        try db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, i INTEGER, d REAL, n TEXT)")
        try db.run("INSERT INTO t VALUES (?1, ?2, ?3, ?4)", [.text("a, \"b\"\n"), .int(Int64.max), .double(-0.125), .null])
        #expect(try db.query("SELECT k, i, d, n FROM t") == [[.text("a, \"b\"\n"), .int(Int64.max), .double(-0.125), .null]])
        #expect(try db.query("PRAGMA journal_mode") == [[.text("wal")]], "writable databases run in WAL mode")
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try db.transaction { try db.run("INSERT INTO t (k) VALUES ('x')"); throw Stop() }
        }
        #expect(try db.scalar("SELECT COUNT(*) FROM t") == 1, "the failed transaction's insert was rolled back")
        try db.transaction { try db.run("INSERT INTO t (k) VALUES ('y')") }
        // A reader on the same file sees the committed rows and cannot write.
        let reader = try SQLiteDatabase(path: path, readOnly: true)
        #expect(try reader.scalar("SELECT COUNT(*) FROM t") == 2)
        #expect(throws: SQLiteError.self) { try reader.run("INSERT INTO t (k) VALUES ('z')") }
    }

    @Test func errorsNameThePathTheStatementAndSQLitesMessage() throws {
        let dir = Fixtures.temporaryDirectory("sqlite-wrapper")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.sqlite").path
        let db = try SQLiteDatabase(path: path)
        do { _ = try db.query("SELECT x FROM missing"); Issue.record("expected an error") } catch {
            #expect(error == SQLiteError(path: path, sql: "SELECT x FROM missing", phase: .prepare, code: 1, message: "no such table: missing"))
            #expect(error.kind == .other)
            #expect(error.description == "SQLite database \(path): SELECT x FROM missing: no such table: missing")
            #expect(PipelineError(error) == .store(path: path, reason: "SELECT x FROM missing: no such table: missing"))
        }
        try db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        try db.run("INSERT INTO t VALUES ('a')")
        do { try db.run("INSERT INTO t VALUES ('a')"); Issue.record("expected an error") } catch {
            #expect(error.phase == .step && error.code & 0xff == 19 && error.message == "UNIQUE constraint failed: t.k", "\(error)")
        }
        let missing = dir.appendingPathComponent("no/such/folder/t.sqlite").path
        do { _ = try SQLiteDatabase(path: missing); Issue.record("expected an error") } catch {
            #expect(error == SQLiteError(path: missing, sql: nil, phase: .open, code: 14, message: "unable to open database file"))
            #expect(PipelineError(error) == .store(path: missing, reason: "unable to open database file"))
        }
    }

    /// SQLite's primary result codes (sqlite3.h) as the run store words them.
    @Test func theRunStoreWordsSQLiteCodesAsBefore() {
        func mapped(_ code: Int32, sql: String? = "INSERT INTO judgments VALUES (?1)") -> PipelineError {
            PipelineError(SQLiteError(path: "/r/store.sqlite", sql: sql, phase: .step, code: code, message: "msg"))
        }
        #expect(mapped(13) == .unwritable(path: "/r/store.sqlite", reason: "the disk is full"))
        #expect(mapped(13 | (1 << 8)) == .unwritable(path: "/r/store.sqlite", reason: "the disk is full"), "extended codes map by their primary code")
        #expect(mapped(10) == .unwritable(path: "/r/store.sqlite", reason: "I/O error (msg)"))
        #expect(mapped(8) == .unwritable(path: "/r/store.sqlite", reason: "the store is read-only (msg)"))
        #expect(mapped(11) == .storeDamaged(path: "/r/store.sqlite", reason: "msg"))
        #expect(mapped(26) == .storeDamaged(path: "/r/store.sqlite", reason: "msg"))
        #expect(mapped(5) == .store(path: "/r/store.sqlite", reason: "INSERT INTO judgments VALUES (?1): msg"))
        #expect(mapped(5, sql: nil) == .store(path: "/r/store.sqlite", reason: "msg"))
        let long = String(repeating: "x", count: 100)
        #expect(mapped(1, sql: long) == .store(path: "/r/store.sqlite", reason: String(repeating: "x", count: 60) + ": msg"))
    }

    /// The verdict cache on the shared wrapper: WAL, verdicts and identities as before, and
    /// its errors still `JudgeError.cache` with the wording users saw.
    @Test func theVerdictCacheKeepsItsBehaviourAndMessages() throws {
        let dir = Fixtures.temporaryDirectory("sqlite-cache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("cache.sqlite")
        let cache = try VerdictCache(path: url)
        let v = Verdict(judge: "openai:m", trait: "evil", score: 42.5, status: .ok, rubricHash: "sha")
        try cache.put("k1", v, identity: "id-1")
        try cache.put("k2", Verdict(judge: "openai:m", trait: "evil", score: nil, status: .refusal, rubricHash: "sha"), identity: "id-1")
        try cache.put("k3", v)
        try cache.put("k4", Verdict(judge: "openai:m", trait: "evil", score: nil, status: .error, rubricHash: "sha"))
        #expect(try cache.get("k1") == v && cache.get("k4") == nil && cache.get("nope") == nil)
        #expect(try cache.count() == 3, "error verdicts are never stored")
        #expect(try cache.identities(judge: "openai:m").map { "\($0.identity) \($0.count)" } == ["id-1 2"])
        #expect(FileManager.default.fileExists(atPath: url.path + "-wal"))
        try cache.checkpoint()
        #expect(SQLiteDatabase.fileSize(url.path + "-wal") == 0, "checkpoint(TRUNCATE) folds the log into the file")
        // A second connection on the same file (another process) reads what the first wrote.
        #expect(try VerdictCache(path: url).get("k1") == v)

        // A file that is not a database, and a folder that does not exist.
        let junk = dir.appendingPathComponent("junk.sqlite")
        try Data(repeating: 7, count: 4096).write(to: junk)
        #expect(throws: JudgeError.cache(path: junk.path, reason: "PRAGMA journal_mode=WAL: file is not a database")) { _ = try VerdictCache(path: junk) }
        let missing = dir.appendingPathComponent("none/cache.sqlite")
        #expect(throws: JudgeError.cache(path: missing.path, reason: "unable to open database file")) { _ = try VerdictCache(path: missing) }
        // A stored verdict that is not JSON is named by its key.
        let raw = try SQLiteDatabase(path: url.path)
        try raw.run("UPDATE verdicts SET verdict = 'not json' WHERE key = 'k3'")
        do { _ = try cache.get("k3"); Issue.record("expected an error") } catch {
            guard case .cache(let path, let reason) = error else { Issue.record("got \(error)"); return }
            #expect(path == url.path && reason.hasPrefix("stored verdict for key k3 is not JSON: "), "\(reason)")
        }
    }

    /// Several writers on one cache file queue on the busy timeout instead of failing.
    @Test func concurrentWritersOnOneCacheFileAllLand() throws {
        let dir = Fixtures.temporaryDirectory("sqlite-cache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("cache.sqlite")
        let caches = try (0..<4).map { _ in try VerdictCache(path: url) }
        final class Failures: @unchecked Sendable {
            let lock = NSLock()
            var all: [String] = []
            func add(_ s: String) { lock.lock(); all.append(s); lock.unlock() }
        }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 4) { w in
            for i in 0..<50 {
                do { try caches[w].put("w\(w)-\(i)", Verdict(judge: "j", trait: "evil", score: Double(i), status: .ok, rubricHash: "h")) } catch {
                    failures.add("\(error)")
                }
            }
        }
        #expect(failures.all.isEmpty, "\(failures.all.prefix(3))")
        #expect(try caches[0].count() == 200)
    }
}
