import Foundation
import Synchronization
import CSQLite

/// A value bound to or read from a statement.
public enum SQLValue: Equatable, Sendable, CustomStringConvertible {
    case int(Int64)
    case double(Double)
    case text(String)
    case null

    public var int: Int? { if case .int(let i) = self { return Int(i) }; return nil }
    public var double: Double? {
        switch self { case .double(let d): return d; case .int(let i): return Double(i); default: return nil }
    }
    public var text: String? { if case .text(let s) = self { return s }; return nil }

    public var description: String {
        switch self {
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .text(let s): return s
        case .null: return ""
        }
    }
}

/// What SQLite said when a call on a database failed: the file, the statement (nil when
/// opening), SQLite's (extended) result code and message. Each user of `SQLiteDatabase` maps it
/// to its own error (the run store to `PipelineError`, the verdict cache to `JudgeError.cache`).
package struct SQLiteError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Where the call failed.
    package enum Phase: Sendable, Equatable {
        /// Opening or setting up the file.
        case open
        /// Compiling a statement (`sqlite3_prepare_v2`).
        case prepare
        /// Running a prepared statement (`sqlite3_step`).
        case step
        /// A script run with `execute` (`sqlite3_exec`).
        case exec
    }

    /// What went wrong, from the primary result code.
    package enum Kind: Sendable, Equatable {
        /// SQLITE_FULL: the disk (or the page limit) is full.
        case full
        /// SQLITE_IOERR: the OS refused a read or write.
        case ioError
        /// SQLITE_READONLY: the file or its folder cannot be written.
        case readOnly
        /// SQLITE_CORRUPT, SQLITE_NOTADB: the file is damaged or not a database.
        case damaged
        /// Anything else (a locked file past the busy timeout, a constraint, a missing table...).
        case other
    }

    package var path: String
    package var sql: String?
    package var phase: Phase
    /// SQLite's extended result code.
    package var code: Int32
    package var message: String

    package init(path: String, sql: String?, phase: Phase, code: Int32, message: String) {
        self.path = path; self.sql = sql; self.phase = phase; self.code = code; self.message = message
    }

    package var kind: Kind {
        switch code & 0xff {
        case SQLITE_FULL: return .full
        case SQLITE_IOERR: return .ioError
        case SQLITE_READONLY: return .readOnly
        case SQLITE_CORRUPT, SQLITE_NOTADB: return .damaged
        default: return .other
        }
    }

    package var description: String {
        "SQLite database \(path): " + (sql.map { "\($0.prefix(60)): " } ?? "") + message
    }
}

/// The one SQLite wrapper of the library (the run store and the verdict cache both use it):
/// statements with bound values, rows back, and transactions. A writable database runs in WAL
/// mode, so readers (`misalign status`) read while a writer writes, and a kill at any point
/// leaves the last committed transaction intact; a busy timeout makes writers of one file (in
/// several processes) queue instead of failing. Every call is serialised by a lock.
// Unchecked Sendable: the connection handle `db` (an OpaquePointer, opened with
// SQLITE_OPEN_FULLMUTEX) is used only while `lock` is held, by every method after init; `path`
// is a constant. The lock is recursive because a transaction's body runs statements.
package final class SQLiteDatabase: @unchecked Sendable {
    package let path: String
    private let db: OpaquePointer
    private let lock = NSRecursiveLock()

    /// Test hook: a page limit (`PRAGMA max_page_count`) for writable databases opened under a
    /// path prefix with `testPageLimit: true` (the run store), so a test can make SQLite report
    /// a full disk (SQLITE_FULL).
    static let testPageLimits = Mutex<[String: Int]>([:])
    package static func setTestPageLimit(_ limit: Int?, under prefix: String) {
        testPageLimits.withLock { $0[prefix] = limit }
    }

    /// Opens `path`. `readOnly` opens it with SQLITE_OPEN_READONLY (readers: status, report,
    /// inspect), never creating or changing the file; when the folder is read-only too and no
    /// write-ahead log exists, the file is opened `immutable` (nothing can be writing it).
    /// Otherwise the file is created when missing and put in WAL mode with
    /// `synchronous=NORMAL`. `testPageLimit` applies `setTestPageLimit`'s limit, if one is set.
    package init(path: String, readOnly: Bool = false, testPageLimit: Bool = false) throws(SQLiteError) {
        self.path = path
        var handle: OpaquePointer?
        var message = ""
        func open(_ name: String, _ flags: Int32) -> Int32 {
            handle = nil
            let rc = sqlite3_open_v2(name, &handle, flags | SQLITE_OPEN_FULLMUTEX, nil)
            if rc != SQLITE_OK, let h = handle {
                message = String(cString: sqlite3_errmsg(h))
                sqlite3_close(h); handle = nil
            } else if rc != SQLITE_OK {
                message = String(cString: sqlite3_errstr(rc))
            }
            return rc
        }
        var rc: Int32
        if readOnly {
            rc = open(path, SQLITE_OPEN_READONLY)
            // A WAL file read from a read-only folder without its -shm file: SQLite cannot make
            // one; with no write-ahead log left nothing is writing, so `immutable` reads it.
            if rc == SQLITE_OK, Self.probe(handle!) != SQLITE_OK, access((path as NSString).deletingLastPathComponent, W_OK) != 0,
               Self.fileSize(path + "-wal") == 0 {
                sqlite3_close(handle!)
                rc = open("file:" + (path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path) + "?immutable=1",
                          SQLITE_OPEN_READONLY | SQLITE_OPEN_URI)
            }
        } else {
            rc = open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        }
        guard rc == SQLITE_OK, let handle else { throw SQLiteError(path: path, sql: nil, phase: .open, code: rc, message: message) }
        db = handle
        sqlite3_busy_timeout(db, 30_000)
        if !readOnly {
            do {
                if testPageLimit {
                    let limit = Self.testPageLimits.withLock { $0.first { path.hasPrefix($0.key) }?.value }
                    if let limit { try execute("PRAGMA max_page_count = \(limit)") }
                }
                try execute("PRAGMA journal_mode=WAL")
                // NORMAL in WAL mode: a commit survives a kill -9 (it is in the WAL, which the OS
                // holds), and an OS crash or power cut can only roll back the newest commits,
                // never tear one. FULL would fsync every commit: 4x the pipeline's overhead on
                // the tiny end-to-end run, for units that are cheap to redo.
                try execute("PRAGMA synchronous=NORMAL")
            } catch { sqlite3_close(db); throw error }
        }
    }

    /// The result code of reading the schema (opening is lazy; this is where a missing -shm,
    /// or a file that is not a database, shows).
    private static func probe(_ db: OpaquePointer) -> Int32 {
        var stmt: OpaquePointer?
        var rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &stmt, nil)
        if rc == SQLITE_OK { rc = sqlite3_step(stmt); if rc == SQLITE_ROW { rc = SQLITE_OK } }
        sqlite3_finalize(stmt)
        return rc & 0xff
    }

    /// The size of the file at `path`, 0 when missing.
    package static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    deinit { sqlite3_close(db) }

    /// Runs one or more statements without values (schema, pragmas, BEGIN/COMMIT).
    package func execute(_ sql: String) throws(SQLiteError) {
        lock.lock(); defer { lock.unlock() }
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        guard rc == SQLITE_OK else {
            let m = err.map { String(cString: $0) } ?? "unknown"
            sqlite3_free(err)
            throw SQLiteError(path: path, sql: sql, phase: .exec, code: sqlite3_extended_errcode(db), message: m)
        }
    }

    /// Runs one statement with `values` bound to ?1, ?2, ...
    package func run(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) {
        lock.lock(); defer { lock.unlock() }
        let stmt = try prepare(sql, values)
        defer { sqlite3_finalize(stmt) }
        let rc = sqlite3_step(stmt)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw failure(sql, .step) }
    }

    /// Every row of a query, each as its column values.
    package func query(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> [[SQLValue]] {
        lock.lock(); defer { lock.unlock() }
        let stmt = try prepare(sql, values)
        defer { sqlite3_finalize(stmt) }
        var rows: [[SQLValue]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw failure(sql, .step) }
            let n = sqlite3_column_count(stmt)
            var row: [SQLValue] = []
            row.reserveCapacity(Int(n))
            for i in 0..<n {
                switch sqlite3_column_type(stmt, i) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(stmt, i)))
                case SQLITE_FLOAT: row.append(.double(sqlite3_column_double(stmt, i)))
                case SQLITE_NULL: row.append(.null)
                default: row.append(.text(sqlite3_column_text(stmt, i).map { String(cString: $0) } ?? ""))
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// The first column of the first row as an integer (COUNT(*) and the like).
    package func scalar(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> Int {
        try query(sql, values).first?.first?.int ?? 0
    }

    /// Runs `body` in one transaction: all its writes land, or none do. BEGIN and COMMIT
    /// failures are `SQLiteError`s; `body`'s own errors pass through unchanged.
    package func transaction<T>(_ body: () throws -> T) throws -> T {
        lock.lock(); defer { lock.unlock() }
        try execute("BEGIN IMMEDIATE")
        do {
            let out = try body()
            try execute("COMMIT")
            return out
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func prepare(_ sql: String, _ values: [SQLValue]) throws(SQLiteError) -> OpaquePointer {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else { throw failure(sql, .prepare) }
        for (i, v) in values.enumerated() {
            let k = Int32(i + 1)
            switch v {
            case .int(let x): sqlite3_bind_int64(stmt, k, x)
            case .double(let x): sqlite3_bind_double(stmt, k, x)
            case .text(let s): misalign_sqlite3_bind_text(stmt, k, s, -1)
            case .null: sqlite3_bind_null(stmt, k)
            }
        }
        return stmt
    }

    private func failure(_ sql: String, _ phase: SQLiteError.Phase) -> SQLiteError {
        SQLiteError(path: path, sql: sql, phase: phase, code: sqlite3_extended_errcode(db), message: String(cString: sqlite3_errmsg(db)))
    }
}
