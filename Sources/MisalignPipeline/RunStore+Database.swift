import Foundation
import MisalignIO

extension PipelineError {
    /// The store's error for what SQLite said: a full disk and write failures are
    /// `.unwritable` (the documented "cannot write PATH: the disk is full" message), a damaged
    /// file `.storeDamaged`, the rest `.store` with the statement's start and SQLite's message.
    init(_ e: SQLiteError) {
        switch e.kind {
        case .full: self = .unwritable(path: e.path, reason: "the disk is full")
        case .ioError: self = .unwritable(path: e.path, reason: "I/O error (\(e.message))")
        case .readOnly: self = .unwritable(path: e.path, reason: "the store is read-only (\(e.message))")
        case .damaged: self = .storeDamaged(path: e.path, reason: e.message)
        case .other: self = .store(path: e.path, reason: e.sql.map { "\($0.prefix(60)): \(e.message)" } ?? e.message)
        }
    }
}

/// The run store's connection: `SQLiteDatabase` with its errors as `PipelineError`s, so the
/// store's methods throw the pipeline's error type only.
struct RunStoreDatabase: Sendable {
    let sqlite: SQLiteDatabase
    var path: String { sqlite.path }

    /// Opens the store file (see `SQLiteDatabase.init`); writers honour the tests' page limit.
    init(path: String, readOnly: Bool) throws(PipelineError) {
        do { sqlite = try SQLiteDatabase(path: path, readOnly: readOnly, testPageLimit: true) } catch { throw PipelineError(error) }
    }

    func execute(_ sql: String) throws(PipelineError) {
        do { try sqlite.execute(sql) } catch { throw PipelineError(error) }
    }

    func run(_ sql: String, _ values: [SQLValue] = []) throws(PipelineError) {
        do { try sqlite.run(sql, values) } catch { throw PipelineError(error) }
    }

    func query(_ sql: String, _ values: [SQLValue] = []) throws(PipelineError) -> [[SQLValue]] {
        do { return try sqlite.query(sql, values) } catch { throw PipelineError(error) }
    }

    func scalar(_ sql: String, _ values: [SQLValue] = []) throws(PipelineError) -> Int {
        do { return try sqlite.scalar(sql, values) } catch { throw PipelineError(error) }
    }

    /// Runs `body` in one transaction; a failed BEGIN or COMMIT is a `PipelineError`.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        do { return try sqlite.transaction(body) } catch let e as SQLiteError { throw PipelineError(e) }
    }

    /// `PRAGMA quick_check`: throws `.storeDamaged` when pages are corrupt or missing.
    func checkIntegrity() throws(PipelineError) {
        let rows = try query("PRAGMA quick_check(5)")
        let problems = rows.compactMap { $0.first?.text }.filter { $0 != "ok" }
        if !problems.isEmpty { throw .storeDamaged(path: path, reason: problems.joined(separator: "; ")) }
    }
}
