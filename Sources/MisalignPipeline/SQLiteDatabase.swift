import Foundation
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

/// The few things the run store needs from SQLite: statements with bound values, rows back,
/// and transactions. WAL mode, so `misalign status` can read while a run writes, and a kill at
/// any point leaves the last committed transaction intact.
final class SQLiteDatabase: @unchecked Sendable {
    let path: String
    private let db: OpaquePointer
    private let lock = NSRecursiveLock()

    /// Test hook: a page limit (`PRAGMA max_page_count`) applied to every writable store opened
    /// under a path prefix, so a test can make SQLite report a full disk (SQLITE_FULL).
    nonisolated(unsafe) static var testPageLimits: [String: Int] = [:]
    private static let hookLock = NSLock()
    static func setTestPageLimit(_ limit: Int?, under prefix: String) {
        hookLock.lock(); testPageLimits[prefix] = limit; hookLock.unlock()
    }

    /// Opens `path`. `readOnly` opens it with SQLITE_OPEN_READONLY (readers: status, report,
    /// inspect), never creating or changing the file; when the folder is read-only too and no
    /// write-ahead log exists, the file is opened `immutable` (nothing can be writing it).
    init(path: String, readOnly: Bool = false) throws(PipelineError) {
        self.path = path
        var handle: OpaquePointer?
        func open(_ name: String, _ flags: Int32) -> Int32 {
            handle = nil
            let rc = sqlite3_open_v2(name, &handle, flags | SQLITE_OPEN_FULLMUTEX, nil)
            if rc != SQLITE_OK, let h = handle { sqlite3_close(h); handle = nil }
            return rc
        }
        var rc: Int32
        if readOnly {
            rc = open(path, SQLITE_OPEN_READONLY)
            // A WAL store read from a read-only folder without its -shm file: SQLite cannot make
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
        guard rc == SQLITE_OK, let handle else { throw Self.error(code: rc, message: String(cString: sqlite3_errstr(rc)), path: path) }
        db = handle
        sqlite3_busy_timeout(db, 30_000)
        if !readOnly {
            do {
                Self.hookLock.lock()
                let limit = Self.testPageLimits.first { path.hasPrefix($0.key) }?.value
                Self.hookLock.unlock()
                if let limit { try execute("PRAGMA max_page_count = \(limit)") }
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

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    /// `PRAGMA quick_check`: throws `.storeDamaged` when pages are corrupt or missing.
    func checkIntegrity() throws(PipelineError) {
        let rows = try query("PRAGMA quick_check(5)")
        let problems = rows.compactMap { $0.first?.text }.filter { $0 != "ok" }
        if !problems.isEmpty { throw .storeDamaged(path: path, reason: problems.joined(separator: "; ")) }
    }

    /// The store's error for a SQLite result code: a full disk and write failures are
    /// `.unwritable` (the documented "cannot write PATH: the disk is full" message), a
    /// damaged file `.storeDamaged`, the rest `.store` with SQLite's message.
    static func error(code: Int32, message: String, path: String, sql: String? = nil) -> PipelineError {
        switch code & 0xff {
        case SQLITE_FULL: return .unwritable(path: path, reason: "the disk is full")
        case SQLITE_IOERR: return .unwritable(path: path, reason: "I/O error (\(message))")
        case SQLITE_READONLY: return .unwritable(path: path, reason: "the store is read-only (\(message))")
        case SQLITE_CORRUPT, SQLITE_NOTADB: return .storeDamaged(path: path, reason: message)
        default: return .store(path: path, reason: sql.map { "\($0.prefix(60)): \(message)" } ?? message)
        }
    }

    deinit { sqlite3_close(db) }

    func execute(_ sql: String) throws(PipelineError) {
        lock.lock(); defer { lock.unlock() }
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        guard rc == SQLITE_OK else {
            let m = err.map { String(cString: $0) } ?? "unknown"
            sqlite3_free(err)
            throw Self.error(code: sqlite3_extended_errcode(db), message: m, path: path, sql: sql)
        }
    }

    /// Runs one statement with `values` bound to ?1, ?2, ...
    func run(_ sql: String, _ values: [SQLValue] = []) throws(PipelineError) {
        lock.lock(); defer { lock.unlock() }
        let stmt = try prepare(sql, values)
        defer { sqlite3_finalize(stmt) }
        let rc = sqlite3_step(stmt)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw failure(sql) }
    }

    /// Every row of a query, each as its column values.
    func query(_ sql: String, _ values: [SQLValue] = []) throws(PipelineError) -> [[SQLValue]] {
        lock.lock(); defer { lock.unlock() }
        let stmt = try prepare(sql, values)
        defer { sqlite3_finalize(stmt) }
        var rows: [[SQLValue]] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw failure(sql) }
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
    func scalar(_ sql: String, _ values: [SQLValue] = []) throws(PipelineError) -> Int {
        try query(sql, values).first?.first?.int ?? 0
    }

    /// Runs `body` in one transaction: all its writes land, or none do.
    func transaction<T>(_ body: () throws -> T) throws -> T {
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

    private func prepare(_ sql: String, _ values: [SQLValue]) throws(PipelineError) -> OpaquePointer {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else { throw failure(sql) }
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

    private func failure(_ sql: String) -> PipelineError {
        Self.error(code: sqlite3_extended_errcode(db), message: String(cString: sqlite3_errmsg(db)), path: path, sql: sql)
    }
}
