import Foundation
import MisalignIO

/// The run directory's store of record, `store.sqlite`: every unit of work the pipeline
/// finished, each written in the same transaction as its result, so a restarted run reads
/// what is done from here and nowhere else. Checkpoint folders hold the adapters; exports
/// (CSV, JSONL) are rebuilt from this store.
///
/// Keys follow the units: checkpoints by (dataset, seed, step); generations by (..., question,
/// sample); judgments by (..., judge, trait); aggregates by (dataset, seed, step, judge,
/// trait); onsets by (dataset, seed, judge, signal, method). `units` records when each coarse
/// unit finished and how long it took (what `misalign status` estimates from).
public final class RunStore: Sendable {
    public static let fileName = "store.sqlite"
    public static let schemaVersion = 1
    public let url: URL
    let db: RunStoreDatabase

    /// Opens the store of the run directory `run`. `create` (writers: `misalign run`) creates
    /// it and its tables when missing; otherwise (readers: status, report, inspect) it is
    /// opened read-only and never written, so a reader can work beside a running writer, on a
    /// read-only folder, and leaves a 0-byte or damaged store as it found it. Either way the
    /// file is checked (`PRAGMA quick_check`): a damaged store is refused with what to do.
    public init(run: URL, create: Bool = true) throws(PipelineError) {
        url = run.appendingPathComponent(Self.fileName)
        if !create && !FileManager.default.fileExists(atPath: url.path) { throw .notARun(path: run.path) }
        db = try RunStoreDatabase(path: url.path, readOnly: !create)
        try db.checkIntegrity()
        if create {
            try db.execute(Self.schema + Self.earlyWarningSchema + Self.heldOutSchema + Self.dynamicsSchema + Self.projectionSchema + Self.calibrationSchema)
        } else {
            guard try db.scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'") > 0 else {
                throw .store(path: url.path, reason: SQLiteDatabase.fileSize(url.path) == 0
                             ? "is empty: the run stopped before its store was set up; run `misalign run CONFIG` again"
                             : "holds no run (no meta table); give the folder `misalign run` wrote")
            }
            try shadowMissingTables()
        }
        let v = try db.query("SELECT value FROM meta WHERE key = 'schema_version'").first?.first?.text
        if let v, Int(v) != Self.schemaVersion {
            throw .store(path: url.path, reason: "schema version \(v); this build reads version \(Self.schemaVersion)")
        }
        if v == nil && create { try setMeta("schema_version", String(Self.schemaVersion)) }
    }

    /// Read-only stores written before a table existed (the monitor's `probes`, `alarms`) get
    /// an empty TEMP table of that name, so readers query them as usual without writing.
    private func shadowMissingTables() throws(PipelineError) {
        let have = Set(try db.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0[0].text })
        for statement in (Self.schema + Self.earlyWarningSchema + Self.heldOutSchema + Self.dynamicsSchema + Self.projectionSchema + Self.calibrationSchema).components(separatedBy: ";") {
            let words = statement.split(whereSeparator: \.isWhitespace)
            guard words.count > 5, let name = words.dropFirst(5).first, !have.contains(String(name)) else { continue }
            // Best effort: without it, a query of that table names it as missing.
            try? db.execute(statement.replacingOccurrences(of: "CREATE TABLE IF NOT EXISTS", with: "CREATE TEMP TABLE IF NOT EXISTS"))
        }
    }

    static let schema = """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS runs (dataset TEXT NOT NULL, seed INTEGER NOT NULL, total_steps INTEGER NOT NULL,
            trained INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (dataset, seed));
        CREATE TABLE IF NOT EXISTS checkpoints (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            path TEXT NOT NULL, PRIMARY KEY (dataset, seed, step));
        CREATE TABLE IF NOT EXISTS metrics (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            loss REAL, lr REAL, grad_norm REAL, tokens INTEGER, seconds REAL, PRIMARY KEY (dataset, seed, step));
        CREATE TABLE IF NOT EXISTS generations (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            question_id TEXT NOT NULL, sample INTEGER NOT NULL, text TEXT NOT NULL, finish_reason TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
            PRIMARY KEY (dataset, seed, step, question_id, sample));
        CREATE TABLE IF NOT EXISTS judgments (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            question_id TEXT NOT NULL, sample INTEGER NOT NULL, judge TEXT NOT NULL, trait TEXT NOT NULL,
            score REAL, status TEXT NOT NULL, detail TEXT NOT NULL, rubric_sha256 TEXT NOT NULL,
            input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, latency REAL NOT NULL, cached INTEGER NOT NULL,
            PRIMARY KEY (dataset, seed, step, question_id, sample, judge, trait));
        CREATE TABLE IF NOT EXISTS aggregates (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            judge TEXT NOT NULL, trait TEXT NOT NULL, answers INTEGER NOT NULL, scored INTEGER NOT NULL, mean REAL,
            ci_low REAL, ci_high REAL, frac_above REAL, refusals INTEGER NOT NULL, unscorable INTEGER NOT NULL,
            excluded_incoherent INTEGER NOT NULL, PRIMARY KEY (dataset, seed, step, judge, trait));
        CREATE TABLE IF NOT EXISTS misaligned (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            judge TEXT NOT NULL, evaluated INTEGER NOT NULL, misaligned INTEGER NOT NULL, fraction REAL,
            PRIMARY KEY (dataset, seed, step, judge));
        CREATE TABLE IF NOT EXISTS onsets (dataset TEXT NOT NULL, seed INTEGER NOT NULL, judge TEXT NOT NULL,
            signal TEXT NOT NULL, method TEXT NOT NULL, step REAL, ci_low REAL, ci_high REAL, defined_fraction REAL,
            PRIMARY KEY (dataset, seed, judge, signal, method));
        CREATE TABLE IF NOT EXISTS lags (dataset TEXT NOT NULL, seed INTEGER NOT NULL, judge TEXT NOT NULL,
            lag_steps REAL, ci_low REAL, ci_high REAL, p_positive REAL, resamples INTEGER NOT NULL,
            PRIMARY KEY (dataset, seed, judge));
        CREATE TABLE IF NOT EXISTS lag_summary (dataset TEXT NOT NULL, judge TEXT NOT NULL, seeds INTEGER NOT NULL,
            median_lag REAL, positive INTEGER NOT NULL, negative INTEGER NOT NULL, sign_test_p REAL,
            PRIMARY KEY (dataset, judge));
        CREATE TABLE IF NOT EXISTS units (stage TEXT NOT NULL, unit TEXT NOT NULL, items INTEGER NOT NULL,
            seconds REAL NOT NULL, finished REAL NOT NULL, PRIMARY KEY (stage, unit));
        """

    // MARK: meta

    public func meta(_ key: String) throws(PipelineError) -> String? {
        try db.query("SELECT value FROM meta WHERE key = ?1", [.text(key)]).first?.first?.text
    }

    public func setMeta(_ key: String, _ value: String) throws(PipelineError) {
        try db.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", [.text(key), .text(value)])
    }

    // MARK: units

    /// Marks a unit done; call inside the transaction that writes its result. A unit that
    /// finished without a result (`failure`: why) is recorded as done, with the reason in
    /// `meta` (`failure.STAGE.UNIT`) for status to show.
    func finish(stage: String, unit: String, items: Int, seconds: Double, failure: String? = nil) throws(PipelineError) {
        try db.run("INSERT OR REPLACE INTO units (stage, unit, items, seconds, finished) VALUES (?1, ?2, ?3, ?4, ?5)",
                   [.text(stage), .text(unit), .int(Int64(items)), .double(seconds), .double(Date().timeIntervalSince1970)])
        if let failure { try setMeta("failure.\(stage).\(unit)", failure) }
    }

    /// Units done with a failure, as "STAGE UNIT: reason".
    public func failures() throws(PipelineError) -> [String] {
        try db.query("SELECT key, value FROM meta WHERE key LIKE 'failure.%' ORDER BY key").compactMap { row in
            guard let k = row[0].text, let v = row[1].text else { return nil }
            let rest = k.dropFirst("failure.".count)
            guard let dot = rest.firstIndex(of: ".") else { return nil }
            return "\(rest[..<dot]) \(rest[rest.index(after: dot)...]): \(v)"
        }
    }

    func isDone(stage: String, unit: String) throws(PipelineError) -> Bool {
        try db.scalar("SELECT COUNT(*) FROM units WHERE stage = ?1 AND unit = ?2", [.text(stage), .text(unit)]) > 0
    }

    /// Measured seconds per item of a stage, from the units finished so far.
    public func rate(stage: String) throws(PipelineError) -> Double? {
        let r = try db.query("SELECT SUM(seconds), SUM(items) FROM units WHERE stage = ?1", [.text(stage)]).first
        guard let s = r?[0].double, let n = r?[1].double, n > 0 else { return nil }
        return s / n
    }

    /// Row count of a table (status, inspect).
    public func count(_ table: String) throws(PipelineError) -> Int {
        try checkTableName(table)
        return try db.scalar("SELECT COUNT(*) FROM \(table)")
    }

    /// Refuses a table name that is not a plain identifier (it goes into a statement's text).
    func checkTableName(_ name: String) throws(PipelineError) {
        guard !name.isEmpty, name.allSatisfy({ $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }) else {
            throw .store(path: url.path, reason: "no table named `\(name)`: give one of \(Exports.tables.joined(separator: ", "))")
        }
    }

    /// Row count of a table with a SQL condition: for tests, which check what the store holds.
    /// The library asks through the typed counts (`RunStore+Counts.swift`).
    package func count(_ table: String, where clause: String, _ values: [SQLValue] = []) throws(PipelineError) -> Int {
        try db.scalar("SELECT COUNT(*) FROM \(table) WHERE \(clause)", values)
    }

    /// Rows of any statement: for tests, which check what the store holds (and change it to
    /// make a case). The library reads typed records (`RunStore+*.swift`); nothing outside
    /// these files holds SQL (`StoreSchemaOwnershipTests`).
    package func rows(_ sql: String, _ values: [SQLValue] = []) throws(PipelineError) -> [[SQLValue]] {
        try db.query(sql, values)
    }

    /// Runs `body` in one transaction.
    public func transaction<T>(_ body: () throws -> T) throws -> T { try db.transaction(body) }
}
