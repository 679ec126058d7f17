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

    init(path: String, readOnly: Bool = false) throws(PipelineError) {
        self.path = path
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_FULLMUTEX
        guard sqlite3_open_v2(path, &handle, flags, nil) == SQLITE_OK, let handle else {
            let reason = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let handle { sqlite3_close(handle) }
            throw .store(path: path, reason: reason)
        }
        db = handle
        sqlite3_busy_timeout(db, 30_000)
        if !readOnly {
            do {
                try execute("PRAGMA journal_mode=WAL")
                // NORMAL in WAL mode: a commit survives a kill -9 (it is in the WAL, which the OS
                // holds), and an OS crash or power cut can only roll back the newest commits,
                // never tear one. FULL would fsync every commit: 4x the pipeline's overhead on
                // the tiny end-to-end run, for units that are cheap to redo.
                try execute("PRAGMA synchronous=NORMAL")
            } catch { sqlite3_close(db); throw error }
        }
    }

    deinit { sqlite3_close(db) }

    func execute(_ sql: String) throws(PipelineError) {
        lock.lock(); defer { lock.unlock() }
        var err: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &err) == SQLITE_OK else {
            let m = err.map { String(cString: $0) } ?? "unknown"
            sqlite3_free(err)
            throw .store(path: path, reason: "\(sql.prefix(60)): \(m)")
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
        .store(path: path, reason: "\(sql.prefix(60)): \(String(cString: sqlite3_errmsg(db)))")
    }
}
