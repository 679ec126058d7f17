import ArgumentParser
import Foundation
import MisalignCore

/// `misalign detect --scores FILE`: onset analysis of per-answer judge scores.
extension DetectCommand {
    // MARK: - scores mode

    /// The detection settings of the flags, read and checked by the library's table
    /// (`DetectionSettings`), as an experiment's `detection:` section is: `--preset`,
    /// `--method`, `--consensus`, `--min-agreeing`, `--baseline`, `--resamples`, `--seed`,
    /// `--confidence`, `--scale`, `--signal-direction`, and every rule parameter, given by a
    /// rule flag (`--z`, `--window`, ...) or as `--rule RULE.KEY=VALUE`.
    func detectionSettings() throws -> DetectionSettings {
        var flags = FlagSettings()
        flags.add("preset", preset); flags.add("method", method); flags.add("consensus", consensus)
        flags.add("min-agreeing", minAgreeing); flags.add("baseline", baseline); flags.add("resamples", resamples)
        flags.add("seed", seed.map { SettingValue.text(String($0)) }); flags.add("confidence", confidence); flags.add("scale", scaleOption)
        flags.add("signal-direction", signalDirections)
        flags.add("rule", try ruleFlags() + ruleSettings)
        var d = DetectionSettings()
        try flags.apply(to: &d)
        return d
    }

    /// The rule flags given, as `RULE.KEY=VALUE` for the preset's rules that have the parameter.
    func ruleFlags() throws -> [String] {
        let chosen = preset
        var out: [String] = []
        func set(_ rule: String, _ key: String, _ v: String?) {
            guard let v, RuleParameters.catalog(chosen, rule: rule).contains(where: { $0.key == key }) else { return }
            out.append("\(rule).\(key)=\(v)")
        }
        func num<T: BinaryInteger>(_ v: T?) -> String? { v.map { String($0) } }
        func num(_ v: Double?) -> String? { v.map { String($0) } }
        set("threshold", "value", num(threshold)); set("threshold", "consecutive", num(consecutive)); set("zscore", "consecutive", num(consecutive))
        set("zscore", "z", num(z))
        for r in ["zscore", "cusum", "bocpd"] { set(r, "min_sd", num(minSD)) }
        set("ma-rise", chosen == .study ? "window" : "width", num(width)); set("ma-rise", "patience", num(patience)); set("ma-rise", "min_rise", num(minRise))
        set("cusum", "drift", num(drift)); set("cusum", "h", num(h))
        set("bocpd", "hazard", num(hazard)); set("bocpd", "window", num(window)); set("bocpd", "alarm_prob", num(alarmProb)); set("bocpd", "confirm", num(confirm))
        set("meanshift", chosen == .study ? "min_segment" : "min_size", num(minSizeOption))
        set("meanshift", "cost", cost?.rawValue)
        if let pen { guard Double(pen) != nil else { throw ValidationError("--pen with --scores must be a number (meanshift's penalty; BIC when absent)") }; set("meanshift", "penalty", pen) }
        if minRise != nil && chosen == .study { throw ValidationError("--min-rise is not a parameter of the study preset's ma-rise (window, patience)") }
        return out
    }

    func runScores(_ path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CLIError("cannot read \(path): \(error.localizedDescription)")
        }
        let d = try detectionSettings()
        let recs = try ScoreRecord.parseJSONL(text, file: path, scale: d.scale)
        // Whatever signals the file holds: none is required.
        let signals = SignalSpec.present(in: recs, directions: d.directions)
        let rules: [any OnsetRule]
        do { rules = try d.rules() } catch { throw ValidationError("\(error)") }
        let config = OnsetConfig(rules: rules, signals: signals, leadSignal: d.lead, lagSignal: d.lag, minAgreeing: d.minAgreeing,
                                 consensus: d.consensus, resamples: d.resamples, seed: d.seed, confidence: d.confidence)
        let (resamples, confidence) = (d.resamples, d.confidence)
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
