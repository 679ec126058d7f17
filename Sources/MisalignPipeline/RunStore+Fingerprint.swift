import Foundation
import MisalignModel

extension RunStore {
    /// Records the config's fingerprint fields (`Experiment.fingerprintFields`) on first use;
    /// afterwards refuses a config whose field differs, naming that one field with its old and
    /// new value. A field may still change while nothing it governs was done (no run started;
    /// for a dataset, no run of it started), so a config fixed after a failed first call is
    /// accepted. Fields new to the store are recorded.
    ///
    /// Stores written before fields existed hold one line per section (`legacy`, from
    /// `Experiment.legacyFingerprints`): those lines are checked once, then the fields are
    /// recorded. Returns notes for the caller to print.
    func checkFingerprints(_ fields: [(String, String)], legacy: [(String, String)], run: URL) throws -> [String] {
        let prefix = "fp."
        var stored: [String: String] = [:]
        for row in try db.query("SELECT key, value FROM meta WHERE key LIKE 'fp.%'") {
            if let k = row[0].text, let v = row[1].text { stored[String(k.dropFirst(prefix.count))] = v }
        }
        var notes: [String] = []
        if stored.isEmpty, try meta("fingerprint.model") != nil {
            for (k, v) in legacy {
                guard let old = try meta("fingerprint." + k), old != v else { continue }
                throw PipelineError.configChanged(run: run.path, detail: Self.legacyChange(k, old: old, new: v))
            }
            notes.append("this run folder was made by an earlier version: its model and data are fingerprinted by content from now on")
        }
        let started = try count("runs") > 0 || count("generations") > 0
        try transaction {
            for (k, v) in fields {
                if let old = stored[k], !Self.sameField(k, old, v) {
                    let mayChange = k.hasPrefix("datasets.")
                        ? try count("runs", where: "dataset = ?1", [.text(String(k.dropFirst("datasets.".count)))]) == 0
                        : !started
                    if !mayChange { throw PipelineError.configChanged(run: run.path, detail: ContentFingerprint.change(k, old: old, new: v)) }
                }
                if stored[k] != v { try setMeta(prefix + k, v) }
            }
        }
        return notes
    }

    /// Whether a stored field and this config's mean the same: a setting by its group's
    /// `SettingKey.sameRecord` (stores written before the one record hold `64.0` for `64` and
    /// layer lists in file order), anything else as text.
    static func sameField(_ field: String, _ old: String, _ new: String) -> Bool {
        if old == new { return true }
        return TrainingOptions.sameField(field, old, new) ?? EvaluationSettings.sameField(field, old, new)
            ?? GenerationSettings.sameField(field, old, new) ?? false
    }

    /// The first differing words of two legacy section lines, with the word before them (the
    /// setting's name in `lr 0.001 linear ...`).
    static func legacyChange(_ section: String, old: String, new: String) -> String {
        let a = old.split(separator: " "), b = new.split(separator: " ")
        guard let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset ?? (a.count != b.count ? min(a.count, b.count) : nil) else {
            return "\(section) was `\(old)`, is now `\(new)`"
        }
        let from = max(0, i - 1)
        func words(_ w: [Substring]) -> String { w[from..<min(w.count, i + 1)].joined(separator: " ") }
        return "\(section): `\(words(a))` is now `\(words(b))`"
    }
}
