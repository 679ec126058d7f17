import ArgumentParser
import Foundation
import MisalignCore

/// `misalign detect`: onset analysis of judge scores, or one change-point method on one series.
struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Find when each judge signal starts going wrong, and the hallucination -> evil lag.",
        discussion: """
        Two modes.

        --scores FILE: JSON Lines, one judged answer per line, e.g. {"signal":"evil","step":40,"question_id":"q3","sample":0,"score":12}, optionally with "dataset" and "seed" (one analysis per dataset and seed). Every signal in the file is analysed, whichever they are; coherence and aligned go wrong downward, every other signal upward (--signal-direction NAME=up|down overrides). Scores must lie within 0 to --scale, steps be 0 or more. Every onset rule runs on the mean curve; the consensus is their median (a majority of rules must find an onset); intervals come from a cluster bootstrap over questions (--resamples, --seed, --confidence), stratified when signals were judged on different questions. --preset study runs the reference study's threshold, ma-rise and meanshift with its int(median) consensus; --consensus, --min-agreeing, --baseline, the rule flags and --rule RULE.KEY=VALUE set the rules' parameters (docs: Docs/ChangePoint.md). The lag is onset(evil) - onset(hallucination) in optimizer steps.

        --series FILE: one series (a JSON array, or one number per line) and one --method. With --json, breakpoints follow ruptures' convention: the end of every segment, the last equal to the series length; an onset rule gives [onset, n], or [n] when there is none.

        A bar (on a terminal) or periodic lines on stderr show the bootstrap's progress; \
        --quiet hides them.

        Examples:
          misalign detect --scores judged.jsonl
          misalign detect --scores judged.jsonl --method threshold,cusum --json
          misalign detect --scores judged.jsonl --preset study --rule threshold.value=40
          misalign detect --series curve.json --method pelt --pen bic --json
          misalign detect --series curve.txt --method dynp --cost normal --n-bkps 2
          misalign detect --series curve.txt --method pelt --sweep
          misalign detect --series curve.txt --method threshold --threshold 50
          misalign detect --series coherence.txt --method cusum --direction down
        """)

    @Option(help: "Judge scores as JSON Lines (per-answer records).")
    var scores: String?

    @Option(help: "One series: a JSON array or one number per line.")
    var series: String?

    @Option(help: "With --series: pelt|binseg|bottomup|dynp|cusum|bocpd|threshold|zscore|ma-rise. With --scores: a comma-separated subset of threshold,ma-rise,meanshift,zscore,cusum,bocpd (default: all).")
    var method: String?

    @OptionGroup var output: OutputOptions
    var json: Bool { output.json }

    // Offline search parameters.
    @Option(help: "Segment cost: l2 (mean), l1 (median), normal (mean and variance). With --scores: meanshift's cost (default preset).")
    var cost: CostModel?
    @Option(help: "Penalty per change point, or 'bic' (default for pelt; binseg/bottomup use it when --n-bkps is absent).")
    var pen: String?
    @Option(name: .customLong("n-bkps"), parsing: .unconditional, help: "Fixed number of change points (binseg, bottomup, dynp).")
    var nBkps: Int?
    @Option(name: .customLong("min-size"), parsing: .unconditional, help: "Minimum segment length (default 2). With --scores: meanshift's min_size (study preset: min_segment).")
    var minSizeOption: Int?
    var minSize: Int { minSizeOption ?? 2 }
    @Option(parsing: .unconditional, help: "Breakpoints only at multiples of this (segment offsets for binseg, as in ruptures).")
    var jump: Int = 1
    @Flag(help: "With pelt: run a log-spaced penalty sweep (BIC/100 to BIC*100) and print how the segmentation changes.")
    var sweep = false

    // Onset rule parameters.
    @Option(help: "Direction in which the series goes wrong: up or down.")
    var direction: Direction = .up
    // Optional so that --scores applies only what was given over the preset's defaults;
    // --series uses the defaults in brackets.
    @Option(parsing: .unconditional, help: "threshold: level to cross [50].")
    var threshold: Double?
    @Option(parsing: .unconditional, help: "threshold, zscore: consecutive checkpoints required [2; study threshold 1].")
    var consecutive: Int?
    @Option(parsing: .unconditional, help: "zscore, cusum, bocpd: baseline checkpoints at the start [10].")
    var baseline: Int?
    @Option(parsing: .unconditional, help: "zscore: standard deviations above the baseline mean [3].")
    var z: Double?
    @Option(name: .customLong("min-sd"), parsing: .unconditional, help: "zscore, cusum, bocpd: floor on the baseline sd [0; --scores: 1% of --scale].")
    var minSD: Double?
    @Option(parsing: .unconditional, help: "ma-rise: moving-average width [3] (study preset: its window).")
    var width: Int?
    @Option(parsing: .unconditional, help: "ma-rise: consecutive rises required [2].")
    var patience: Int?
    @Option(name: .customLong("min-rise"), parsing: .unconditional, help: "ma-rise: total rise required over the patience window [0; --scores: 5% of --scale].")
    var minRise: Double?
    @Option(parsing: .unconditional, help: "cusum: drift k in sd units [0.5].")
    var drift: Double?
    @Option(parsing: .unconditional, help: "cusum: alarm threshold h in sd units [5].")
    var h: Double?
    @Option(parsing: .unconditional, help: "bocpd: expected run length lambda (hazard 1/lambda) [100].")
    var hazard: Double?
    @Option(parsing: .unconditional, help: "bocpd: a run at most this long counts as a change [10].")
    var window: Int?
    @Option(name: .customLong("alarm-prob"), parsing: .unconditional, help: "bocpd: posterior probability of a short run needed for an alarm [0.8].")
    var alarmProb: Double?
    @Option(parsing: .unconditional, help: "bocpd: consecutive updates the alarm condition must hold [3].")
    var confirm: Int?

    // Scores mode.
    @Option(parsing: .unconditional, help: "Bootstrap resamples over questions (default 2000; 0: point estimates only).")
    var resamples: Int?
    @Option(parsing: .unconditional, help: "Bootstrap seed (SplitMix64; default 24301).")
    var seed: UInt64?
    @Option(parsing: .unconditional, help: "Confidence level of the percentile intervals (default 0.95).")
    var confidence: Double?
    @Option(name: .customLong("scale"), parsing: .unconditional, help: "Top of the judge score scale (default 100; thresholds and floors scale with it); scores outside 0 to it are refused.")
    var scaleOption: Double?
    var scale: Double { scaleOption ?? 100 }
    @Option(help: "With --scores: the onset rules, default (today's stricter rules) or study (the study's threshold, ma-rise and meanshift, consensus median-int).")
    var preset: OnsetPreset = .default
    @Option(help: "With --scores: how the rules' onsets combine: majority (median when a majority fire), median (of those that fire), median-int (the study's int(median)). Default: the preset's.")
    var consensus: Consensus?
    @Option(name: .customLong("min-agreeing"), parsing: .unconditional, help: "With --scores: rules that must fire for a consensus (default: a majority with majority, else 1).")
    var minAgreeing: Int?
    @Option(name: .customLong("rule"), help: "With --scores: RULE.KEY=VALUE, any rule parameter as in the YAML detection.rules (repeatable), e.g. zscore.baseline=5, ma-rise.window=3, meanshift.cost=l1, zscore.robust_sd=false.")
    var ruleSettings: [String] = []
    @Option(name: .customLong("signal-direction"), help: "With --scores: NAME=up|down, the direction in which signal NAME goes wrong (repeatable; default: coherence and aligned down, others up).")
    var signalDirections: [String] = []

    func validate() throws {
        if (scores == nil) == (series == nil) { throw ValidationError("give exactly one of --scores FILE or --series FILE") }
        if series != nil && method == nil { throw ValidationError("--series needs --method") }
        if let s = scaleOption, !(s > 0 && s.isFinite) { throw ValidationError("--scale must be a positive number") }
        if series != nil { try validateSeriesOptions() }
        if scores != nil { _ = try detectionSettings() }   // --rule, --method, --pen... before the file is read
    }

    /// The flag combinations of `--series` mode.
    func validateSeriesOptions() throws {
        let m = method ?? ""
        guard Self.seriesMethods.contains(m) else {
            throw ValidationError("unknown --method \(m); use pelt, binseg, bottomup, dynp, cusum, bocpd, threshold, zscore or ma-rise")
        }
        if sweep && m != "pelt" { throw ValidationError("--sweep works with --method pelt") }
        if m == "dynp" && nBkps == nil { throw ValidationError("dynp needs --n-bkps") }
        if let p = pen, p != "bic", Double(p) == nil { throw ValidationError("--pen must be a number or 'bic'") }
    }

    static let seriesMethods = ["pelt", "binseg", "bottomup", "dynp", "cusum", "bocpd", "threshold", "zscore", "ma-rise"]

    func run() throws {
        if let path = scores { try runScores(path) } else { try runSeries(series!) }
    }

    // MARK: - series mode

    func readSeries(_ path: String) throws -> [Double] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("[") {
            let root: JSONValue
            do { root = try JSONValue.parse(trimmed) } catch { throw CLIError("\(path): not valid JSON (\(error))") }
            guard let arr = root.arrayValue else { throw CLIError("\(path): not a JSON array of numbers") }
            return try arr.enumerated().map { i, v in
                guard let d = v.doubleValue else { throw ChangePointError.invalidInput(field: "\(path)[\(i)]", reason: "is a \(v.typeName), not a number") }
                return d
            }
        }
        var out: [Double] = []
        for (i, line) in trimmed.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let d = Double(t) else { throw ChangePointError.invalidInput(field: "\(path) line \(i + 1)", reason: "'\(t)' is not a number") }
            out.append(d)
        }
        return out
    }

    func penaltyValue(_ x: [Double], _ model: CostModel) throws -> Double {
        guard let p = pen, p != "bic" else { return Penalty.bic(x, model: model) }
        guard let v = Double(p) else { throw ValidationError("--pen must be a number or 'bic'") }
        return v
    }

    func runSeries(_ path: String) throws {
        let x = try readSeries(path)
        let name = URL(fileURLWithPath: path).lastPathComponent
        try SeriesCheck.finite(x, series: name)   // before a BIC penalty is computed from it
        let model = cost ?? .l2
        let dir = direction
        let m = method!
        var out = JSONObject()
        out["method"] = .string(m)
        out["n"] = .int(Int64(x.count))
        switch m {
        case "pelt", "binseg", "bottomup", "dynp":
            if sweep {
                guard m == "pelt" else { throw ValidationError("--sweep works with --method pelt") }
                try printSweep(x, name: name, model: model)
                return
            }
            let seg: Segmentation
            switch m {
            case "pelt":
                seg = try Pelt(model: model, penalty: penaltyValue(x, model), minSize: minSize, jump: jump).detect(x, name: name)
            case "dynp":
                guard let k = nBkps else { throw ValidationError("dynp needs --n-bkps") }
                seg = try Dynp(model: model, nBkps: k, minSize: minSize, jump: jump).detect(x, name: name)
            default:
                let rule: StoppingRule = try nBkps.map { .count($0) } ?? .penalty(penaltyValue(x, model))
                seg = m == "binseg"
                    ? try BinarySegmentation(model: model, rule: rule, minSize: minSize, jump: jump).detect(x, name: name)
                    : try BottomUp(model: model, rule: rule, minSize: minSize, jump: jump).detect(x, name: name)
            }
            out["cost"] = .string(model.rawValue)
            if let p = seg.penalty { out["pen"] = .double(p) }
            out["breakpoints"] = .array(seg.breakpoints.map { .int(Int64($0)) })
            out["total_cost"] = .double(seg.totalCost)
            if let r = seg.noChangeReason { out["no_change_reason"] = .string(r.rawValue) }
            out["segments"] = .array(seg.segments.map {
                .object(JSONObject([("start", .int(Int64($0.start))), ("end", .int(Int64($0.end))),
                                    ("mean", .double($0.mean)), ("cost", .double($0.cost))]))
            })
            if json { print(JSONValue.object(out).serialized()); return }
            print("\(m) (\(model.rawValue)\(seg.penalty.map { String(format: ", pen %.4g", $0) } ?? "")) on \(name), n = \(x.count)")
            if let r = seg.noChangeReason { print("no change point: \(r.rawValue)") }
            print("breakpoints: \(seg.breakpoints)")
            print(detectPad("segment", 14) + detectPad("mean", 12) + "cost")
            for s in seg.segments { print(detectPad("\(s.start)..<\(s.end)", 14) + detectPad(String(format: "%.4g", s.mean), 12) + String(format: "%.4g", s.cost)) }
        case "cusum", "bocpd", "threshold", "zscore", "ma-rise":
            let rule: any OnsetRule
            switch m {
            case "threshold": rule = ThresholdRule(threshold: threshold ?? 50, consecutive: consecutive ?? 2)
            case "zscore": rule = BaselineZRule(baseline: baseline ?? 10, z: z ?? 3, consecutive: consecutive ?? 2, minSD: minSD ?? 0)
            case "ma-rise": rule = MovingAverageRiseRule(width: width ?? 3, patience: patience ?? 2, minRise: minRise ?? 0)
            case "cusum": rule = CusumRule(drift: drift ?? 0.5, threshold: h ?? 5, baseline: baseline ?? 10, minSD: minSD ?? 0)
            default: rule = BocpdRule(baseline: baseline ?? 10, hazardLambda: hazard ?? 100, window: window ?? 10, alarmProbability: alarmProb ?? 0.8,
                                      confirm: confirm ?? 3, minSD: max(minSD ?? 0, 1e-9))
            }
            let i = try rule.onset(x, direction: dir, series: name)
            out["direction"] = .string(dir.rawValue)
            out["onset_index"] = i.map { .int(Int64($0)) } ?? .null
            out["breakpoints"] = .array((i.map { [$0, x.count] } ?? [x.count]).filter { $0 > 0 }.map { .int(Int64($0)) })
            if json { print(JSONValue.object(out).serialized()); return }
            print("\(m) (\(dir.rawValue)) on \(name), n = \(x.count): " + (i.map { "onset at index \($0)" } ?? "no onset"))
        default:
            throw ValidationError("unknown --method \(m); use pelt, binseg, bottomup, dynp, cusum, bocpd, threshold, zscore or ma-rise")
        }
    }

    func printSweep(_ x: [Double], name: String, model: CostModel) throws {
        let bic = Penalty.bic(x, model: model)
        let base = bic > 0 ? bic : 1
        let rows = try Penalty.sweep(x, name: name, model: model, penalties: Penalty.logGrid(from: base / 100, to: base * 100, count: 13),
                                     minSize: minSize, jump: jump)
        if json {
            print(JSONValue.array(rows.map {
                .object(JSONObject([("pen", .double($0.penalty)), ("breakpoints", .array($0.breakpoints.map { .int(Int64($0)) })),
                                    ("total_cost", .double($0.totalCost))]))
            }).serialized())
            return
        }
        print("PELT (\(model.rawValue)) penalty sweep on \(name), n = \(x.count), BIC penalty \(String(format: "%.4g", bic))")
        print(detectPad("pen", 12) + detectPad("changes", 9) + detectPad("cost", 12) + "breakpoints")
        for r in rows {
            print(detectPad(String(format: "%.4g", r.penalty), 12) + detectPad("\(r.changePoints)", 9) + detectPad(String(format: "%.4g", r.totalCost), 12) + "\(r.breakpoints)")
        }
    }
}

/// Left-aligned column text for the tables of `detect`.
func detectPad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
func detectFormat(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v) }
