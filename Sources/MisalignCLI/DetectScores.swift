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

    /// The rules of `--preset` and `--method` with every given parameter flag and `--rule`
    /// setting applied (as `detection.rules` in a run config).
    func scoreRules() throws -> [any OnsetRule] {
        let chosen = preset
        var p = RuleParameters(baseline: baseline)
        func set(_ rule: String, _ key: String, _ v: RuleParam?) {
            guard let v, RuleParameters.catalog(chosen, rule: rule).contains(where: { $0.key == key }) else { return }
            p.byRule[rule, default: [:]][key] = v
        }
        func num<T: BinaryInteger>(_ v: T?) -> RuleParam? { v.map { .number(Double($0)) } }
        func num(_ v: Double?) -> RuleParam? { v.map { .number($0) } }
        set("threshold", "value", num(threshold)); set("threshold", "consecutive", num(consecutive)); set("zscore", "consecutive", num(consecutive))
        set("zscore", "z", num(z))
        for r in ["zscore", "cusum", "bocpd"] { set(r, "min_sd", num(minSD)) }
        set("ma-rise", chosen == .study ? "window" : "width", num(width)); set("ma-rise", "patience", num(patience)); set("ma-rise", "min_rise", num(minRise))
        set("cusum", "drift", num(drift)); set("cusum", "h", num(h))
        set("bocpd", "hazard", num(hazard)); set("bocpd", "window", num(window)); set("bocpd", "alarm_prob", num(alarmProb)); set("bocpd", "confirm", num(confirm))
        set("meanshift", chosen == .study ? "min_segment" : "min_size", num(minSizeOption))
        set("meanshift", "cost", cost.map { .cost($0) })
        if let pen { guard let v = Double(pen) else { throw ValidationError("--pen with --scores must be a number (meanshift's penalty; BIC when absent)") }; set("meanshift", "penalty", .number(v)) }
        if minRise != nil && chosen == .study { throw ValidationError("--min-rise is not a parameter of the study preset's ma-rise (window, patience)") }
        for item in ruleSettings {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            let path = parts.first?.split(separator: ".", maxSplits: 1).map(String.init) ?? []
            guard parts.count == 2, path.count == 2 else {
                throw ValidationError("--rule \(item): expected RULE.KEY=VALUE, e.g. zscore.baseline=5")
            }
            let rule = RuleParameters.ruleName(path[0]), key = path[1], text = parts[1]
            let value: RuleParam
            if let c = CostModel(rawValue: text), key == "cost" { value = .cost(c) }
            else if text == "true" || text == "false" { value = .flag(text == "true") }
            else if let d = Double(text) { value = .number(d) }
            else { throw ValidationError("--rule \(item): \(text) is not a number, true/false or a cost (l2, l1, normal)") }
            if let why = RuleParameters.problem(preset: chosen, rule: rule, key: key, value) { throw ValidationError("--rule \(item): \(why)") }
            p.byRule[rule, default: [:]][key] = value
        }
        let methods = method.map { $0.split(separator: ",").map { RuleParameters.ruleName($0.trimmingCharacters(in: .whitespaces)) } }
        for w in methods ?? [] where !OnsetPreset.allMethods.contains(w) {
            throw ValidationError("unknown onset method '\(w)'; use \(OnsetPreset.allMethods.joined(separator: ","))")
        }
        do { return try OnsetConfig.rules(preset: chosen, methods: methods, scale: scale, parameters: p) } catch {
            throw ValidationError("\(error)")
        }
    }

    func runScores(_ path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CLIError("cannot read \(path): \(error.localizedDescription)")
        }
        let recs = try ScoreRecord.parseJSONL(text, file: path, scale: scale)
        // Whatever signals the file holds: none is required.
        let signals = SignalSpec.present(in: recs, directions: try parsedSignalDirections())
        let rules = try scoreRules()
        let config = OnsetConfig(rules: rules, signals: signals, minAgreeing: minAgreeing,
                                 consensus: consensus ?? preset.defaultConsensus,
                                 resamples: resamples, seed: seed, confidence: confidence)
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
