import Foundation
import MisalignChangePoint
import MisalignJudge

extension Experiment {
    /// `detection:`; `judges` are the canonical judge names, for `judge` (a judge, or `mean`
    /// with two or more judges). Without the section: today's rules, the first judge.
    static func parseDetection(_ n: YAMLNode?, judges: [String], file: String) throws(PipelineError) -> DetectionSettings {
        var d = DetectionSettings()
        if let n = try n?.mapping() {
            if let v = try n.optional("preset") {
                guard let p = OnsetPreset(rawValue: try v.string()) else { throw v.error("must be default or study") }
                d = DetectionSettings(preset: p)
            }
            if let v = try n.optional("methods") {
                d.methods = try v.strings().map(RuleParameters.ruleName)
                for m in d.methods where !DetectionSettings.allMethods.contains(m) {
                    throw v.error("unknown method `\(m)`; use \(DetectionSettings.allMethods.joined(separator: ", "))")
                }
                if d.methods.isEmpty { throw v.error("is empty") }
            }
            if let v = try n.optional("consensus") {
                guard let c = Consensus(parsing: try v.string()) else { throw v.error("must be majority, median or median-int") }
                d.consensus = c
            }
            if let v = try n.optional("baseline") { d.parameters.baseline = try v.int(min: 2, max: 1_000_000, "at least 2 checkpoints") }
            if let r = try n.optional("rules") { d.parameters.byRule = try parseRuleParameters(r, preset: d.preset) }
            if let v = try n.optional("resamples") { d.resamples = try v.int(min: 0, max: Bounds.resamples) }
            if let v = try n.optional("seed") { d.seed = UInt64(try v.int(min: 0)) }
            if let v = try n.optional("confidence") { d.confidence = try v.double(in: 0.5...0.9999, "in [0.5, 1)") }
            if let v = try n.optional("scale") { d.scale = try v.double(in: 1e-9...1e9, "> 0") }
            if let v = try n.optional("lead") { d.lead = try v.string() }
            if let v = try n.optional("lag") { d.lag = try v.string() }
            if let v = try n.optional("min_agreeing") { d.minAgreeing = try v.int(min: 1, max: DetectionSettings.allMethods.count) }
            if let v = try n.optional("judge") {
                let s = try v.string()
                d.judge = s == DetectionSettings.meanJudge ? s : JudgeSpec.canonicalName(s)
            }
            if let dirs = try n.optional("directions") {
                for (trait, v) in try dirs.entries() {
                    guard let dir = Direction(rawValue: try v.string()) else { throw v.error("must be up or down") }
                    d.directions[trait] = dir
                }
            }
            try n.rejectUnknown()
            do { _ = try d.rules() } catch {
                throw PipelineError.config(file: file, key: "detection.rules", line: n.line, reason: error.description)
            }
        }
        if let j = d.judge {
            if j == DetectionSettings.meanJudge {
                guard judges.count >= 2 else {
                    throw PipelineError.config(file: file, key: "detection.judge", line: nil,
                                               reason: "`mean` averages two or more judges; judges.models lists \(judges.count)")
                }
            } else if !judges.contains(j) {
                throw PipelineError.config(file: file, key: "detection.judge", line: nil, reason: "`\(j)` is not one of judges.models (or `mean`)")
            }
        }
        d.judge = d.judge ?? judges.first
        return d
    }

    /// `detection.rules: {RULE: {KEY: VALUE}}` checked against `RuleParameters.catalog`.
    static func parseRuleParameters(_ n: YAMLNode, preset: OnsetPreset) throws(PipelineError) -> [String: [String: RuleParam]] {
        var out: [String: [String: RuleParam]] = [:]
        for (written, r) in try n.entries() {
            let rule = RuleParameters.ruleName(written)
            guard OnsetPreset.allMethods.contains(rule) else {
                throw r.error("unknown rule; use \(OnsetPreset.allMethods.joined(separator: ", "))")
            }
            let catalog = RuleParameters.catalog(preset, rule: rule)
            for (key, v) in try r.entries() {
                guard let kind = catalog.first(where: { $0.key == key })?.kind else {
                    throw v.error("not a parameter of \(rule) with preset \(preset.rawValue); use \(catalog.map(\.key).joined(separator: ", "))")
                }
                let value: RuleParam
                switch kind {
                case .flag: value = .flag(try v.bool())
                case .cost:
                    guard let c = CostModel(rawValue: try v.string()) else { throw v.error("must be l2, l1 or normal") }
                    value = .cost(c)
                case .int: value = .number(Double(try v.int()))
                case .double, .probability: value = .number(try v.double())
                }
                if let why = RuleParameters.problem(preset: preset, rule: rule, key: key, value) { throw v.error(why) }
                out[rule, default: [:]][key] = value
            }
        }
        return out
    }
}
