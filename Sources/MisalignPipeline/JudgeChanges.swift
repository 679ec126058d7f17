import Foundation
import MisalignJudge

/// Judges across calls on one run folder. Verdicts are stored under the judge's canonical name
/// (`JudgeSpec.canonicalName`), so respelling a judge's URL (`localhost` for `127.0.0.1`, a
/// trailing slash, the default port, an upper-case host) is the same judge: nothing is asked
/// again. A judge that really changed gets a note saying exactly what changed.
extension PipelineRunner {
    /// Moves verdicts stored under an older spelling of a configured judge to its canonical
    /// name (stores written before names were canonical), and returns one note per judge that
    /// left or joined `judges.models`, naming what differs from the judge it replaces.
    func reconcileJudges() throws -> [String] {
        let names = judgeNames
        let stored = try store.judgeNames()
        var present = Set(stored)
        for old in stored where !names.contains(old) {
            let canonical = JudgeSpec.canonicalName(old)
            guard canonical != old, names.contains(canonical), !present.contains(canonical) else { continue }
            try store.transaction {
                try store.renameJudge(from: old, to: canonical)
            }
            present.remove(old)
            present.insert(canonical)
        }
        let gone = present.filter { !names.contains($0) }.sorted()
        let new = names.filter { !present.contains($0) }
        guard !present.isEmpty, !new.isEmpty || !gone.isEmpty else { return [] }
        var notes: [String] = []
        var unmatched = gone
        for n in new {
            guard let spec = try? JudgeSpec(parsing: n) else { continue }
            // The judge it most likely replaces: same API and model first, else same API.
            let olds = unmatched.compactMap { o in (try? JudgeSpec(parsing: o)).map { (o, $0) } }
            let match = olds.first { $0.1.kind == spec.kind && $0.1.model == spec.model } ?? olds.first { $0.1.kind == spec.kind }
            if let (oldName, oldSpec) = match {
                unmatched.removeAll { $0 == oldName }
                notes.append("judges.models: `\(oldName)` is now `\(n)` (\(spec.changes(from: oldSpec).joined(separator: ", "))): "
                             + "a different judge, so its verdicts are asked afresh; `\(oldName)`'s stay in the store")
            } else {
                notes.append("judges.models: `\(n)` is new: its verdicts are asked")
            }
        }
        for o in unmatched {
            notes.append("judges.models: `\(o)` is no longer listed; its verdicts stay in the store")
        }
        return notes
    }

    /// Which aggregation and detection settings differ between two analysis fingerprints
    /// (`Experiment.fingerprints()`'s `analysis`: `key value` pairs, aggregation before `; `,
    /// detection after), e.g. `detection settings changed (judge: a -> b)`.
    static func analysisChange(from old: String, to new: String) -> String {
        let a = old.components(separatedBy: "; "), b = new.components(separatedBy: "; ")
        guard a.count == 2, b.count == 2 else { return "aggregation or detection settings changed" }
        var parts: [String] = []
        for (i, label) in ["aggregation", "detection"].enumerated() where a[i] != b[i] {
            let x = a[i].split(separator: " ").map(String.init), y = b[i].split(separator: " ").map(String.init)
            guard x.count == y.count else { parts.append("\(label) settings changed"); continue }
            var diffs: [String] = []
            for k in x.indices where x[k] != y[k] {
                diffs.append(k > 0 ? "\(x[k - 1]): \(x[k]) -> \(y[k])" : "\(x[k]) -> \(y[k])")
            }
            parts.append("\(label) settings changed (\(diffs.joined(separator: ", ")))")
        }
        return parts.isEmpty ? "aggregation or detection settings changed" : parts.joined(separator: "; ")
    }
}
