import Foundation
import MisalignIO
import MisalignJudge

/// One judge's calibration on one trait as the run stored it (`calibrations`): what the gate
/// decided before judging (`PipelineRunner.calibrationGate`), and the figures behind it.
public struct StoredCalibration: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        /// Cleared every threshold (`CalibrationThresholds`).
        case pass
        /// Missed at least one; `figures.failures` says which.
        case fail
        /// Left out by `judges.calibration_exempt`; `note` is the stated reason.
        case exempt
        /// No calibration item bands the trait; `note` says what to give.
        case unavailable
    }
    public var judge: String
    public var trait: String
    /// What the figures depend on (judge, verdict settings, rubric, set items, thresholds):
    /// a stored row with another key is calibrated again.
    public var key: String
    public var status: Status
    /// The set scored (`built-in` or the file's path); empty when exempt.
    public var set: String
    public var figures: TraitCalibration?
    public var note: String

    public init(judge: String, trait: String, key: String, status: Status, set: String, figures: TraitCalibration?, note: String) {
        self.judge = judge; self.trait = trait; self.key = key; self.status = status; self.set = set
        self.figures = figures; self.note = note
    }

    /// Whether curves from this judge on this trait are to be read as unverified.
    public var untrusted: Bool { status == .fail || status == .unavailable }
}

extension RunStore {
    static let calibrationSchema = """
        CREATE TABLE IF NOT EXISTS calibrations (judge TEXT NOT NULL, trait TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL,
            set_source TEXT NOT NULL, figures TEXT, note TEXT NOT NULL, PRIMARY KEY (judge, trait));
        """

    /// Stores (replaces) calibrations. Call inside a transaction.
    func putCalibration(_ c: StoredCalibration) throws(PipelineError) {
        try db.run("""
            INSERT OR REPLACE INTO calibrations (judge, trait, key, status, set_source, figures, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            """, [.text(c.judge), .text(c.trait), .text(c.key), .text(c.status.rawValue), .text(c.set),
                  c.figures.map { .text($0.json().serialized()) } ?? .null, .text(c.note)])
    }

    /// Every stored calibration, by judge and trait.
    public func calibrations() throws(PipelineError) -> [StoredCalibration] {
        try db.query("SELECT judge, trait, key, status, set_source, figures, note FROM calibrations ORDER BY judge, trait").map { row throws(PipelineError) in
            var figures: TraitCalibration?
            if let text = row[5].text {
                do { figures = try TraitCalibration(json: try JSONValue.parse(text)) } catch {
                    throw .storeDamaged(path: url.path, reason: "calibrations: figures of \(row[0].text ?? "?") on \(row[1].text ?? "?") do not parse (\(error))")
                }
            }
            return StoredCalibration(judge: row[0].text ?? "", trait: row[1].text ?? "", key: row[2].text ?? "",
                                     status: StoredCalibration.Status(rawValue: row[3].text ?? "") ?? .unavailable,
                                     set: row[4].text ?? "", figures: figures, note: row[6].text ?? "")
        }
    }
}
