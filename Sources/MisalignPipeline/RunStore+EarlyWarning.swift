import Foundation
import MisalignIO

/// The early-warning monitor's records in the store of record: one `probes` row per (run,
/// step, signal) and one `alarms` row per (run, signal, detector) first alarm. The monitor's
/// own JSONL files under `checkpoints/<run>/early-warning/` mirror them; on start the pipeline
/// rewrites those files from the store where they disagree (`PipelineRunner.makeMonitor`).
extension RunStore {
    static let earlyWarningSchema = """
        CREATE TABLE IF NOT EXISTS probes (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            signal TEXT NOT NULL, signal_index INTEGER NOT NULL, mean REAL, scored INTEGER NOT NULL, answers INTEGER NOT NULL,
            seconds REAL NOT NULL, fingerprint TEXT NOT NULL, PRIMARY KEY (dataset, seed, step, signal));
        CREATE TABLE IF NOT EXISTS alarms (dataset TEXT NOT NULL, seed INTEGER NOT NULL, signal TEXT NOT NULL,
            detector TEXT NOT NULL, step INTEGER NOT NULL, statistic REAL NOT NULL, change_step INTEGER NOT NULL,
            PRIMARY KEY (dataset, seed, signal, detector));
        """

    private func key(_ r: RunID) -> [SQLValue] { [.text(r.dataset), .int(Int64(r.seed))] }

    func putProbe(_ r: RunID, _ p: ProbeRecord) throws(PipelineError) {
        for (i, s) in p.signals.enumerated() {
            try db.run("""
                INSERT OR REPLACE INTO probes (dataset, seed, step, signal, signal_index, mean, scored, answers, seconds, fingerprint)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                """, key(r) + [.int(Int64(p.step)), .text(s.name), .int(Int64(i)), s.mean.map { .double($0) } ?? .null,
                               .int(Int64(s.scored)), .int(Int64(s.answers)), .double(p.seconds), .text(p.fingerprint)])
        }
    }

    func putAlarm(_ r: RunID, _ a: AlarmRecord) throws(PipelineError) {
        try db.run("""
            INSERT OR REPLACE INTO alarms (dataset, seed, signal, detector, step, statistic, change_step)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            """, key(r) + [.text(a.signal), .text(a.detector), .int(Int64(a.step)), .double(a.statistic), .int(Int64(a.changeStep))])
    }

    func deleteAlarms(_ r: RunID) throws(PipelineError) {
        try db.run("DELETE FROM alarms WHERE dataset = ?1 AND seed = ?2", key(r))
    }

    /// A run's stored probes, by step, each signal in its recorded order.
    public func probes(_ r: RunID) throws(PipelineError) -> [ProbeRecord] {
        let rows = try db.query("""
            SELECT step, signal, mean, scored, answers, seconds, fingerprint FROM probes
            WHERE dataset = ?1 AND seed = ?2 ORDER BY step, signal_index
            """, key(r))
        var out: [ProbeRecord] = []
        for row in rows {
            let step = row[0].int ?? 0
            let signal = ProbeRecord.Signal(name: row[1].text ?? "", mean: row[2].double, scored: row[3].int ?? 0, answers: row[4].int ?? 0)
            if out.last?.step == step { out[out.count - 1].signals.append(signal) } else {
                out.append(ProbeRecord(step: step, fingerprint: row[6].text ?? "", signals: [signal], seconds: row[5].double ?? 0))
            }
        }
        return out
    }

    /// A run's stored first alarms, by step.
    public func alarms(_ r: RunID) throws(PipelineError) -> [AlarmRecord] {
        try db.query("""
            SELECT step, signal, detector, statistic, change_step FROM alarms WHERE dataset = ?1 AND seed = ?2
            ORDER BY step, signal, detector
            """, key(r)).map {
            AlarmRecord(step: $0[0].int ?? 0, signal: $0[1].text ?? "", detector: $0[2].text ?? "", statistic: $0[3].double ?? 0,
                        changeStep: $0[4].int ?? 0)
        }
    }
}
