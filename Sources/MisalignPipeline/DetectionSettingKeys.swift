import Foundation
import MisalignChangePoint
import MisalignIO
import MisalignJudge

/// Onset detection as settings: an experiment's `detection:` section and `misalign detect
/// --scores`' flags (`--preset`, `--method`, `--rule`, `--signal-direction`, ...) read through
/// this one table. Every one changes only what is computed from the stored verdicts
/// (`SettingEffect.analysis`): a changed value recomputes the analysis.
extension DetectionSettings: SettingGroup {
    public static var section: String { "detection" }

    /// The table, `preset` first: it sets the methods and consensus that later keys may change.
    public static var keys: [SettingKey<DetectionSettings>] {
        typealias Key = SettingKey<DetectionSettings>
        let b = Experiment.Bounds.self
        return [
            Key(name: "preset", expected: "default or study", effect: .analysis,
                read: { o, e throws(SettingProblem) in
                    guard case .text(let s) = e.value, let p = OnsetPreset(rawValue: s) else {
                        throw SettingProblem(detail: "expected default or study, found \(e.shown)")
                    }
                    o.preset = p; o.methods = p.methods; o.consensus = p.defaultConsensus
                },
                record: { $0.preset.rawValue }),
            Key(name: "methods", aliases: ["method"], expected: "a list of \(allMethods.joined(separator: ", "))", effect: .analysis,
                read: { o, e throws(SettingProblem) in
                    var out: [String] = []
                    for item in e.value.items {
                        guard case .text(let s) = item else { throw SettingProblem(detail: "expected method names, found \(item.shown)") }
                        let m = RuleParameters.ruleName(s)
                        guard allMethods.contains(m) else { throw SettingProblem(detail: "`\(m)` is not an onset method; use \(allMethods.joined(separator: ", "))") }
                        out.append(m)
                    }
                    o.methods = out
                },
                check: { $0.methods.isEmpty ? "is empty" : nil },
                record: { $0.methods.joined(separator: ",") }),
            Key(name: "consensus", expected: "majority, median or median-int", effect: .analysis,
                read: { o, e throws(SettingProblem) in
                    guard case .text(let s) = e.value, let c = Consensus(parsing: s) else {
                        throw SettingProblem(detail: "expected majority, median or median-int, found \(e.shown)")
                    }
                    o.consensus = c
                },
                record: { $0.consensus.rawValue }),
            Key(name: "baseline", expected: "an integer (checkpoints at the start; at least 2)", effect: .analysis,
                read: { o, e throws(SettingProblem) in o.parameters.baseline = e.value == .null ? nil : try Key.integer(e, max: 1_000_000) },
                check: { $0.parameters.baseline.flatMap { Key.inRange($0, 2...1_000_000, note: " checkpoints") } },
                record: { $0.parameters.baseline.map(String.init) ?? "none" }),
            Key(name: "rules", aliases: ["rule"], expected: "RULE: {KEY: VALUE} (RULE.KEY=VALUE on a command line)", effect: .analysis,
                read: { o, e throws(SettingProblem) in try readRules(&o, e) },
                record: { $0.rulesRecord }),
            Key.intSetting("resamples", \.resamples, 0...b.resamples, note: " (0: point estimates only)", effect: .analysis),
            Key.seedSetting("seed", \.seed, effect: .analysis),
            Key.doubleSetting("confidence", \.confidence, in: 0.5...1, upperOpen: true, effect: .analysis),
            Key.doubleSetting("scale", \.scale, in: 1e-9...1e9, note: " (the top of the judges' score scale, > 0)", effect: .analysis),
            word("lead", \.lead), word("lag", \.lag),
            Key(name: "min-agreeing", expected: "an integer (rules that must fire)", effect: .analysis,
                read: { o, e throws(SettingProblem) in o.minAgreeing = e.value == .null ? nil : try Key.integer(e, max: allMethods.count) },
                check: { $0.minAgreeing.flatMap { Key.inRange($0, 1...allMethods.count) } },
                record: { $0.minAgreeing.map(String.init) ?? "none" }),
            Key(name: "judge", expected: "a judge of judges.models, or mean", effect: .analysis,
                read: { o, e throws(SettingProblem) in
                    switch e.value {
                    case .null: o.judge = nil
                    case .text(let s): o.judge = s == meanJudge ? s : JudgeSpec.canonicalName(s)
                    default: throw SettingProblem(detail: "expected a judge's name, found \(e.shown)")
                    }
                },
                record: { $0.judge ?? "none" }),
            Key(name: "directions", aliases: ["signal-direction"], expected: "SIGNAL: up or down (SIGNAL=up on a command line)", effect: .analysis,
                read: { o, e throws(SettingProblem) in
                    for p in try keyValues(e, form: "NAME=up or NAME=down", example: "coherence=down") {
                        guard !p.key.isEmpty, case .text(let s) = p.value, let d = Direction(rawValue: s) else {
                            throw SettingProblem(detail: "\(p.key): expected up or down, found \(p.value.shown)")
                        }
                        o.directions[p.key] = d
                    }
                },
                record: { $0.directions.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.rawValue)" }.joined(separator: ",") }),
            // A pipeline setting (the `dynamics` stage), so an experiment's only: `misalign detect --scores` has no adapters.
            Key.boolSetting("adapter-dynamics", \.adapterDynamics, effect: .analysis, sources: [.yaml]),
        ]
    }

    /// The rules the settings build, checked once every setting is read.
    public func crossCheck(given: Set<String>) -> (setting: String, detail: String)? {
        do { _ = try rules() } catch { return ("rules", error.description) }
        if !adapterDynamics, let s = adapterSignals.first {
            return ("directions", "names \(s.signal.rawValue), an adapter signal, but adapter_dynamics is false; set it true or leave the signal out")
        }
        return nil
    }

    private static func word(_ name: String, _ kp: WritableKeyPath<DetectionSettings, String>) -> SettingKey<DetectionSettings> {
        SettingKey(name: name, expected: "a signal's name", effect: .analysis,
                   read: { o, e throws(SettingProblem) in
                       guard case .text(let s) = e.value, !s.isEmpty else { throw SettingProblem(detail: "expected a signal's name, found \(e.shown)") }
                       o[keyPath: kp] = s
                   },
                   record: { $0[keyPath: kp] })
    }

    /// A mapping's pairs, or `KEY=VALUE` texts (repeated flags) as pairs; an item of another
    /// form is refused naming it.
    private static func keyValues(_ e: SettingEntry, form: String, example: String) throws(SettingProblem) -> [SettingPair] {
        if case .map(let m) = e.value { return m }
        var out: [SettingPair] = []
        for item in e.value.items {
            guard case .text(let s) = item, let eq = s.firstIndex(of: "="), eq != s.startIndex else {
                let shown: String
                if case .text(let s) = item { shown = s } else { shown = item.shown }
                throw SettingProblem(detail: "\(shown): expected \(form), e.g. \(example)")
            }
            out.append(SettingPair(String(s[..<eq]), .text(String(s[s.index(after: eq)...]))))
        }
        return out
    }

    /// `rules`: a mapping `{RULE: {KEY: VALUE}}` (YAML, JSON) or `RULE.KEY=VALUE` texts (flags),
    /// each checked against `RuleParameters.catalog` of the preset read before it.
    private static func readRules(_ o: inout DetectionSettings, _ e: SettingEntry) throws(SettingProblem) {
        var triples: [(rule: String, key: String, value: SettingValue)] = []
        if case .map(let rules) = e.value {
            for r in rules {
                guard case .map(let keys) = r.value else { throw SettingProblem(detail: "\(r.key): expected KEY: VALUE lines, found \(r.value.shown)") }
                for k in keys { triples.append((r.key, k.key, k.value)) }
            }
        } else {
            for p in try keyValues(e, form: "RULE.KEY=VALUE", example: "zscore.baseline=5") {
                let path = p.key.split(separator: ".", maxSplits: 1).map(String.init)
                guard path.count == 2 else { throw SettingProblem(detail: "\(p.key): expected RULE.KEY=VALUE, e.g. zscore.baseline=5") }
                triples.append((path[0], path[1], p.value))
            }
        }
        for t in triples {
            let rule = RuleParameters.ruleName(t.rule)
            guard allMethods.contains(rule) else { throw SettingProblem(detail: "unknown rule `\(t.rule)`; use \(allMethods.joined(separator: ", "))") }
            let catalog = RuleParameters.catalog(o.preset, rule: rule)
            guard let kind = catalog.first(where: { $0.key == t.key })?.kind else {
                throw SettingProblem(detail: "`\(t.key)` is not a parameter of \(rule) with preset \(o.preset.rawValue); use \(catalog.map(\.key).joined(separator: ", "))")
            }
            let value = try ruleParam(t.value, kind: kind, at: "\(rule).\(t.key)")
            if let why = RuleParameters.problem(preset: o.preset, rule: rule, key: t.key, value) { throw SettingProblem(detail: "\(rule).\(t.key): \(why)") }
            o.parameters.byRule[rule, default: [:]][t.key] = value
        }
    }

    /// A rule parameter's value: a YAML/JSON scalar, or its text on a command line.
    private static func ruleParam(_ v: SettingValue, kind: RuleParameters.Kind, at path: String) throws(SettingProblem) -> RuleParam {
        switch (kind, v) {
        case (.flag, .bool(let b)): return .flag(b)
        case (.flag, .text(let s)) where s == "true" || s == "false": return .flag(s == "true")
        case (.cost, .text(let s)):
            guard let c = CostModel(rawValue: s) else { throw SettingProblem(detail: "\(path): must be l2, l1 or normal") }
            return .cost(c)
        case (.int, _):
            if let i = v.intValue { return .number(Double(i)) }
            if case .text(let s) = v, let i = Int(s) { return .number(Double(i)) }
            throw SettingProblem(detail: "\(path): expected an integer, found \(v.shown)")
        case (.double, _), (.probability, _):
            if let d = v.doubleValue { return .number(d) }
            if case .text(let s) = v, let d = Double(s) { return .number(d) }
            throw SettingProblem(detail: "\(path): expected a number, found \(v.shown)")
        default:
            throw SettingProblem(detail: "\(path): expected \(kind.words), found \(v.shown)")
        }
    }

    /// The rule parameters as `rule.key=value` pairs, sorted.
    var rulesRecord: String {
        parameters.byRule.sorted { $0.key < $1.key }.flatMap { rule, keys in
            keys.sorted { $0.key < $1.key }.map { key, v -> String in
                switch v {
                case .number(let x): return "\(rule).\(key)=\(x)"
                case .flag(let b): return "\(rule).\(key)=\(b)"
                case .cost(let c): return "\(rule).\(key)=\(c.rawValue)"
                }
            }
        }.joined(separator: ",")
    }
}

extension RuleParameters.Kind {
    /// What a value of this kind must be, in words.
    var words: String {
        switch self {
        case .flag: return "true or false"
        case .cost: return "l2, l1 or normal"
        case .int: return "an integer"
        case .double, .probability: return "a number"
        }
    }
}
