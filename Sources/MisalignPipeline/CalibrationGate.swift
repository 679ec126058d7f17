import Foundation
import MisalignHTTP
import MisalignIO
import MisalignJudge

/// What the pipeline does with a judge before it judges (`judges.calibration`).
public enum CalibrationGateMode: String, Sendable, CaseIterable {
    /// A judge that fails calibration on a trait it scores stops the run with the figures.
    case require
    /// It judges anyway; the run notes the failure and the report marks its curves.
    case warn
    /// No calibration.
    case off
}

extension JudgeSettings {
    /// The set each trait is calibrated on: the user's `calibration_set` where it bands the
    /// trait, else the built-in set where that does, else none.
    func calibrationSets(_ user: CalibrationSet?) -> [String: CalibrationSet] {
        var out: [String: CalibrationSet] = [:]
        for t in traits {
            if let user, !user.items(for: t).isEmpty { out[t] = user } else if !CalibrationSet.builtin.items(for: t).isEmpty { out[t] = .builtin }
        }
        return out
    }
}

extension PipelineRunner {
    /// The calibration gate (Docs/Judges.md, "Calibration"): every judge is calibrated on
    /// every trait it scores, once per judge, verdict settings, rubric, set and thresholds
    /// (stored in `calibrations`, verdicts through the run's verdict cache), before any answer
    /// is judged. Under `require` a judge that fails (or a trait no item bands) stops the run
    /// with the figures and what to do; under `warn` the run goes on with a note, and the
    /// report and `status` mark it. Exempt judges are stored as such with their reason.
    /// Returns the judges it had to build (nil when every calibration was stored already), so
    /// the judge stage does not load a local model twice.
    func calibrationGate(factory: JudgeFactory, build: () throws -> [any Judge]) async throws -> [any Judge]? {
        let js = experiment.judges
        guard js.calibration != .off else { return nil }
        let rubrics = try js.resolvedRubrics()
        var user: CalibrationSet?
        if let url = js.calibrationSet {
            do { user = try CalibrationSet.load(url) } catch {
                throw PipelineError.config(file: experiment.source, key: "judges.calibration_set", line: experiment.lines["judges.calibration_set"],
                                           reason: error.description)
            }
        }
        let sets = js.calibrationSets(user)
        let thresholds = CalibrationThresholds()
        let names = judgeNames
        let stored = Dictionary(try store.calibrations().map { ("\($0.judge)\u{1F}\($0.trait)", $0) }, uniquingKeysWith: { a, _ in a })
        let settings = js.record([.verdicts]).map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        var rows: [StoredCalibration] = []
        var todo: [(judge: Int, trait: String, key: String)] = []
        let plugInStart = names.count - components.judges.count  // `judgeNames`: configured judges, then plug-ins
        for (j, name) in names.enumerated() {
            let identity = j >= plugInStart ? components.judges[j - plugInStart].cacheIdentity : settings
            for t in js.traits {
                if let reason = js.calibrationExempt[name] {
                    rows.append(StoredCalibration(judge: name, trait: t, key: "exempt:" + SHA256.hex(reason), status: .exempt, set: "", figures: nil, note: reason))
                    continue
                }
                guard let rubric = rubrics[t] else { throw JudgeError.invalidInput("no rubric for trait `\(t)`") }
                guard let set = sets[t] else {
                    let note = "no item of the built-in calibration set" + (user.map { " or of \($0.source)" } ?? "") + " bands `\(t)`"
                    rows.append(StoredCalibration(judge: name, trait: t, key: "unavailable", status: .unavailable, set: "", figures: nil, note: note))
                    continue
                }
                let key = SHA256.hex([name, identity, rubric.sha256, set.digest(for: t), "\(thresholds.minAUC),\(thresholds.minSeparation),"
                                      + "\(thresholds.maxUnscorable),\(thresholds.minScoredPerBand)"].joined(separator: "\u{1E}"))
                if let s = stored["\(name)\u{1F}\(t)"], s.key == key { rows.append(s); continue }
                todo.append((j, t, key))
            }
        }
        var judges: [any Judge]?
        if !todo.isEmpty {
            let built = try build()
            judges = built
            rows += try await calibrate(todo, judges: built, names: names, rubrics: rubrics, sets: sets, thresholds: thresholds, factory: factory)
        }
        try store.transaction {
            for r in rows { try store.putCalibration(r) }
        }
        try decide(rows.filter { names.contains($0.judge) })
        return judges
    }

    /// Calibrates each (judge, trait) of `todo`; a judge whose calls failed stops the run as
    /// unavailable (what it answered is in the verdict cache for the next run).
    private func calibrate(_ todo: [(judge: Int, trait: String, key: String)], judges: [any Judge], names: [String],
                           rubrics: [String: Rubric], sets: [String: CalibrationSet], thresholds: CalibrationThresholds,
                           factory: JudgeFactory) async throws -> [StoredCalibration] {
        let js = experiment.judges
        let cache = try VerdictCache(path: js.cache ?? store.url)
        let calibrator = Calibrator(maxInFlight: js.maxInFlight, thresholds: thresholds)
        let total = todo.reduce(0) { $0 + (sets[$1.trait]?.items(for: $1.trait).count ?? 0) }
        note("calibrate: \(total) calibration verdicts before judging (\(Set(todo.map { names[$0.judge] }).sorted().joined(separator: ", ")))")
        var rows: [StoredCalibration] = []
        var done = 0
        for j in Set(todo.map(\.judge)).sorted() {
            let mine = todo.filter { $0.judge == j }
            // One call per set the judge's traits use (the user's, the built-in one).
            for source in Set(mine.compactMap { sets[$0.trait]?.source }).sorted() {
                let group = mine.filter { sets[$0.trait]?.source == source }
                guard let set = sets[group[0].trait] else { continue }
                let chosen = group.compactMap { rubrics[$0.trait] }
                let offset = done
                let report = try await calibrator.calibrate(judge: judges[j], rubrics: chosen, set: set, cache: cache) { [self] d, _ in
                    progress(.stage(name: "calibrate", done: offset + d, total: total))
                }
                done += group.reduce(0) { $0 + set.items(for: $1.trait).count }
                if report.failedCalls > 0 {
                    throw PipelineError.judgeUnavailable(
                        judge: names[j], reason: "calibration: \(report.failedCalls) calls failed, the last with "
                            + redact(report.lastError ?? "an error", secrets: factory.secrets) + "; the verdicts received are cached",
                        done: try store.count("judgments"), remaining: report.failedCalls)
                }
                for (g, figures) in zip(group, report.traits) {
                    rows.append(StoredCalibration(judge: names[j], trait: g.trait, key: g.key, status: figures.passed ? .pass : .fail,
                                                  set: set.source, figures: figures, note: ""))
                }
                try checkCancelled("judge")
            }
        }
        return rows
    }

    /// Stops the run under `require` when a judge failed (or could not be calibrated on) a
    /// trait; notes it under `warn`.
    private func decide(_ rows: [StoredCalibration]) throws {
        let bad = rows.filter(\.untrusted)
        if !bad.isEmpty, experiment.judges.calibration == .require {
            throw PipelineError.calibrationFailed(bad.map(Self.calibrationLine))
        }
        guard !calibrationNoted, !rows.isEmpty else { return }
        calibrationNoted = true
        note("calibrate: " + Self.calibrationSummary(rows))
        for l in bad.map(Self.calibrationLine) { note("calibrate: WARNING \(l); its curves are marked in the report (judges.calibration: warn)") }
    }

    /// "openai:x on evil: AUC 0.500 is below 0.85 ...; band means ..." for one failed row.
    static func calibrationLine(_ r: StoredCalibration) -> String {
        if r.status == .unavailable { return "\(r.judge) on \(r.trait): not calibrated: \(r.note)" }
        return "\(r.judge) on \(r.trait): " + (r.figures?.failures.joined(separator: "; ") ?? "failed")
    }

    /// "3 passed, 1 exempt" over rows.
    static func calibrationSummary(_ rows: [StoredCalibration]) -> String {
        let counts = Dictionary(grouping: rows, by: \.status).mapValues(\.count)
        return [StoredCalibration.Status.pass, .fail, .exempt, .unavailable].compactMap { s in
            counts[s].map { "\($0) \(s == .pass ? "passed" : s == .fail ? "failed" : s == .exempt ? "exempt" : "not calibrated")" }
        }.joined(separator: ", ") + " (judge x trait)"
    }
}
