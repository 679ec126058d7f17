import Foundation
import Testing
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// The study's onset rules against `Tests/Fixtures/changepoint/study_rules_cases.json`, written
/// by `make_study_rules.py` from the study's definitions in numpy: every rule's onset index and
/// both consensus forms, on ties, flat, short, decreasing, `down` and random curves.
@Suite struct StudyRulesTests {
    struct Case {
        var name: String
        var values: [Double]
        var steps: [Int]
        var direction: Direction
        var scale: Double
        var value: Double, consecutive: Int, window: Int, patience: Int, minSegment: Int
        var expected: [String: Int?]
        var consensusInt: Double?
        var consensusMedian: Double?
    }

    static func cases() throws -> [Case] {
        let data = try String(contentsOf: Fixtures.url("changepoint/study_rules_cases.json"), encoding: .utf8)
        let root = try JSONValue.parse(data)
        return try #require(root["cases"]?.arrayValue).map { c in
            let p = c["params"]!
            var expected: [String: Int?] = [:]
            for r in ["threshold", "ma-rise", "meanshift"] { expected[r] = c["expected"]?[r]?.intValue }
            return Case(name: c["name"]!.stringValue!, values: c["values"]!.arrayValue!.map { $0.doubleValue! },
                        steps: c["steps"]!.arrayValue!.map { $0.intValue! }, direction: Direction(rawValue: c["direction"]!.stringValue!)!,
                        scale: c["scale"]!.doubleValue!, value: p["value"]!.doubleValue!, consecutive: p["consecutive"]!.intValue!,
                        window: p["window"]!.intValue!, patience: p["patience"]!.intValue!, minSegment: p["min_segment"]!.intValue!,
                        expected: expected, consensusInt: c["consensus_int"]?.doubleValue, consensusMedian: c["consensus_median"]?.doubleValue)
        }
    }

    static func rules(_ c: Case) -> [any OnsetRule] {
        [StudyThresholdRule(value: c.value, consecutive: c.consecutive),
         StudyMovingAverageRule(window: c.window, patience: c.patience, scale: c.scale),
         StudyMeanShiftRule(minSegment: c.minSegment)]
    }

    @Test func everyRuleMatchesTheIndependentNumpyDefinitions() throws {
        let cases = try Self.cases()
        #expect(cases.count == 170)
        var checked = 0
        for c in cases {
            for rule in Self.rules(c) {
                let got = try rule.onset(c.values, direction: c.direction, series: c.name)
                #expect(got == c.expected[rule.name]!, "\(c.name): \(rule.name)")
                checked += 1
            }
        }
        #expect(checked == 510)
    }

    @Test func consensusIsTheStudysIntMedianOrThePlainMedian() throws {
        for c in try Self.cases() {
            let spec = SignalSpec("s", c.direction)
            for (mode, want) in [(Consensus.medianInt, c.consensusInt), (.median, c.consensusMedian)] {
                let config = OnsetConfig(rules: Self.rules(c), signals: [spec], consensus: mode, resamples: 0)
                let got = try OnsetAnalysis.onsets(c.values, steps: c.steps, spec: spec, config: config)
                #expect(got.consensusStep == want, "\(c.name): \(mode)")
                #expect(got.methods.map(\.method) == ["threshold", "ma-rise", "meanshift"])
            }
        }
    }

    @Test func thePresetBuildsTheStudysRulesAndParametersReachThem() throws {
        let study = try OnsetConfig.rules(preset: .study, scale: 100)
        #expect(study.map(\.name) == ["threshold", "ma-rise", "meanshift"])
        #expect((study[0] as? StudyThresholdRule).map { ($0.value, $0.consecutive) } ?? (0, 0) == (50, 1))
        #expect((study[1] as? StudyMovingAverageRule).map { ($0.window, $0.patience) } ?? (0, 0) == (3, 2))
        #expect((study[2] as? StudyMeanShiftRule)?.minSegment == 2)
        #expect(OnsetConfig.study().consensus == .medianInt && OnsetConfig.study().minAgreeing == 1)
        let p = RuleParameters(byRule: ["threshold": ["value": .number(30)], "ma-rise": ["window": .number(5), "patience": .number(3)],
                                        "meanshift": ["min_segment": .number(4)], "zscore": ["z": .number(2)]], baseline: 6)
        let r = try OnsetConfig.rules(preset: .study, methods: ["threshold", "ma_rise", "meanshift", "zscore"], scale: 100, parameters: p)
        #expect((r[0] as? StudyThresholdRule)?.value == 30)
        #expect((r[1] as? StudyMovingAverageRule).map { ($0.window, $0.patience) } ?? (0, 0) == (5, 3))
        #expect((r[2] as? StudyMeanShiftRule)?.minSegment == 4)
        #expect((r[3] as? BaselineZRule).map { ($0.baseline, $0.z, $0.minSD) } ?? (0, 0, 0) == (6, 2, 1))
        // The default preset without parameters is today's rules.
        let d = try OnsetConfig.rules(preset: .default, scale: 100)
        #expect(d.map(\.name) == OnsetConfig.defaultRules(scale: 100).map(\.name))
        #expect((d[0] as? ThresholdRule)?.consecutive == 2 && (d[3] as? BaselineZRule)?.baseline == 10 && (d[4] as? CusumRule)?.baseline == 10)
        #expect(throws: ChangePointError.invalidParameter(name: "ma-rise.min_rise", value: "number(1.0)",
                                                          reason: "`min_rise` is not a parameter of ma-rise with preset study; use window, patience")) {
            try OnsetConfig.rules(preset: .study, parameters: RuleParameters(byRule: ["ma-rise": ["min_rise": .number(1)]]))
        }
        #expect(throws: ChangePointError.invalidParameter(name: "zscore.baseline", value: "number(1.5)", reason: "zscore.baseline must be a whole number >= 2")) {
            try OnsetConfig.rules(preset: .default, parameters: RuleParameters(byRule: ["zscore": ["baseline": .number(1.5)]]))
        }
    }

    @Test func earliestIndexEachRuleCanReport() throws {
        // A curve that is already "wrong" from its first checkpoint: each rule's earliest answer.
        let high = [Double](repeating: 80, count: 30)
        var rising = [Double](repeating: 0, count: 30)
        for i in 0..<30 { rising[i] = Double(i) * 3 }
        let earliest: [(any OnsetRule, [Double], Int)] = [
            (StudyThresholdRule(), high, 0), (StudyMovingAverageRule(), rising, 1), (StudyMeanShiftRule(), high, 1),
            (ThresholdRule(threshold: 50, consecutive: 2), high, 0), (MovingAverageRiseRule(width: 3, patience: 2, minRise: 0), rising, 2),
        ]
        // The baseline rules cannot report inside their baseline: a jump right after it.
        var jump = [Double](repeating: 0, count: 10) + [Double](repeating: 80, count: 20)
        for i in 0..<10 { jump[i] = Double(i % 2) }
        let defaults = try OnsetConfig.rules(preset: .default, methods: ["zscore", "cusum", "bocpd"], scale: 100)
        for rule in defaults {
            let got = try rule.onset(jump, direction: .up, series: "s")
            print("earliest \(rule.name): \(got.map(String.init) ?? "none")")
            #expect(got == 10, "\(rule.name)")
        }
        for (rule, x, want) in earliest {
            #expect(try rule.onset(x, direction: .up, series: "s") == want, "\(rule.name)")
        }
        // Zero padding hides a jump at the last checkpoint from ma-rise (the padded last point
        // falls), not from the threshold; a flat start counts as "never decreases".
        #expect(try StudyMovingAverageRule().onset([10, 8, 6, 4, 2, 1, 1, 80], direction: .up, series: "s") == nil)
        #expect(try StudyThresholdRule().onset([10, 8, 6, 4, 2, 1, 1, 80], direction: .up, series: "s") == 7)
        #expect(try StudyMovingAverageRule().onset([0, 0, 0, 0, 0, 0, 40, 80], direction: .up, series: "s") == 1)
        #expect(try StudyMovingAverageRule().onset([0, 0, 0], direction: .up, series: "s") == nil)
        #expect(try StudyMeanShiftRule().onset([1, 2, 3], direction: .up, series: "s") == nil)
    }
}
