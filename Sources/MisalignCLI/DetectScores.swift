import ArgumentParser
import Foundation
import MisalignCore

/// `misalign detect --scores FILE`: onset analysis of per-answer judge scores.
extension DetectCommand {
    /// `--signal-direction NAME=up|down`, by signal.
    func parsedSignalDirections() throws -> [String: Direction] {
        var out: [String: Direction] = [:]
        for d in signalDirections {
            let parts = d.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let dir = Direction(rawValue: parts[1]) else {
                throw ValidationError("--signal-direction \(d): expected NAME=up or NAME=down, e.g. coherence=down")
            }
            out[parts[0]] = dir
        }
        return out
    }

    // MARK: - scores mode

    func runScores(_ path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CLIError("cannot read \(path): \(error.localizedDescription)")
        }
        let recs = try ScoreRecord.parseJSONL(text, file: path, scale: scale)
        // Whatever signals the file holds: none is required.
        let signals = SignalSpec.present(in: recs, directions: try parsedSignalDirections())
        var rules = OnsetConfig.defaultRules(scale: scale)
        if let m = method {
            let wanted = m.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for w in wanted where !rules.contains(where: { $0.name == w }) {
                throw ValidationError("unknown onset method '\(w)'; use \(rules.map(\.name).joined(separator: ","))")
            }
            rules = rules.filter { wanted.contains($0.name) }
        }
        let config = OnsetConfig(rules: rules, signals: signals, resamples: resamples, seed: seed, confidence: confidence)
        let bar = ProgressBar(label: "bootstrap resamples", total: resamples, mode: resamples > 0 ? output.progressMode : .silent)
        let reports = try OnsetAnalysis.analyze(records: recs, config: config) { done, total in bar.update(done, total: total) }
        bar.finish()
        if json { print(OnsetJSON.reports(reports, datasets: reports.count > 1 ? compareDatasets(reports) : nil).serialized()); return }
        let pct = Int((confidence * 100).rounded())
        for r in reports {
            let label = [r.dataset, r.seed.map { "seed \($0)" }].compactMap { $0 }.joined(separator: ", ")
            print("== \(label.isEmpty ? "run" : label): onsets in optimizer steps (#checkpoint index), \(r.resamples) bootstrap resamples over questions")
            var header = detectPad("signal", 15) + detectPad("dir", 5)
            for rule in rules { header += detectPad(rule.name, 11) }
            print(header + detectPad("consensus", 11) + detectPad("spread", 11) + "\(pct)% CI")
            for s in r.signals {
                var line = detectPad(s.signal, 15) + detectPad(s.direction.rawValue, 5)
                for m in s.methods { line += detectPad(m.step.map { "\($0) (#\(m.index!))" } ?? "-", 11) }
                line += detectPad(s.consensusStep.map { detectFormat($0) } ?? "none", 11)
                line += detectPad(s.spread.map { "\($0.min)-\($0.max)" } ?? "-", 11)
                line += s.interval.map { "[\(detectFormat($0.low)), \(detectFormat($0.high))]" + ($0.definedFraction < 1 ? String(format: " (onset in %.0f%%)", $0.definedFraction * 100) : "") } ?? "-"
                print(line)
            }
            let pair = [config.lagSignal, config.leadSignal].allSatisfy { s in signals.contains { $0.name == s } }
            var lag = "lag (\(config.lagSignal) - \(config.leadSignal)): "
                + (r.lagSteps.map { "\(detectFormat($0)) steps" } ?? (pair ? "undefined (an onset is missing)" : "needs both signals in the scores"))
            if let iv = r.lagInterval { lag += ", \(pct)% CI [\(detectFormat(iv.low)), \(detectFormat(iv.high))]" }
            if let p = r.probabilityLagPositive { lag += String(format: ", P(lag > 0) = %.3f", p) }
            print(lag + "\n")
        }
        if reports.count > 1 {
            print("== across runs")
            print(detectPad("dataset", 14) + detectPad("runs", 6) + detectPad("hallucination", 15) + detectPad("evil", 8) + detectPad("median lag", 12) + detectPad("+/-", 7) + detectPad("sign p", 9) + "mean P(lag>0)")
            for row in compareDatasets(reports) {
                print(detectPad(row.dataset, 14) + detectPad("\(row.runs)", 6)
                      + detectPad(row.medianOnsets["hallucination"].map(detectFormat) ?? "-", 15) + detectPad(row.medianOnsets["evil"].map(detectFormat) ?? "-", 8)
                      + detectPad(row.seeds.medianLag.map(detectFormat) ?? "-", 12) + detectPad("\(row.seeds.positive)/\(row.seeds.negative)", 7)
                      + detectPad(row.seeds.signTestP.map { String(format: "%.3g", $0) } ?? "-", 9)
                      + (row.meanProbabilityLagPositive.map { String(format: "%.3f", $0) } ?? "-"))
                print("  lags by seed: " + row.seeds.lags.map { "\($0.seed.map(String.init) ?? "-"): \($0.lag.map(detectFormat) ?? "none")" }.joined(separator: ", "))
            }
        }
    }
}
