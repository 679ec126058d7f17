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

/// `detect --scores --preset study`, the consensus choice, and rule parameters given as flags
/// or `--rule` reaching the rules (they were ignored in this mode before).
@Suite struct DetectPresetCLITests {
    /// One answer per checkpoint whose score is the curve's value: the mean curve is the curve.
    static func lines(_ signal: String, values: [Double], steps: [Int]) -> [String] {
        zip(values, steps).map { v, s in #"{"signal":"\#(signal)","step":\#(s),"question_id":"q","sample":0,"score":\#(v)}"# }
    }

    static func run(_ lines: [String], _ args: [String]) throws -> (status: Int32, json: JSONValue?, err: String) {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("judged.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        let r = try CLI.run(["detect", "--scores", file.path, "--resamples", "0", "--json", "--quiet"] + args)
        return (r.status, r.status == 0 ? try JSONValue.parse(r.out) : nil, r.err)
    }

    static func methods(_ json: JSONValue?, signal: String) -> [String: Int?] {
        let s = json?["runs"]?.arrayValue?.first?["signals"]?.arrayValue?.first { $0["signal"]?.stringValue == signal }
        var out: [String: Int?] = [:]
        for m in s?["methods"]?.arrayValue ?? [] { out[m["method"]!.stringValue!] = m["step"]?.intValue }
        return out
    }

    static func consensus(_ json: JSONValue?, signal: String) -> Double? {
        json?["runs"]?.arrayValue?.first?["signals"]?.arrayValue?.first { $0["signal"]?.stringValue == signal }?["consensus_step"]?.doubleValue
    }

    @Test func studyPresetMatchesTheNumpyFixtureOnEvilAndHallucinationAlone() throws {
        let cases = try StudyRulesTests.cases().filter {
            $0.direction == .up && $0.scale == 100 && $0.value == 50 && $0.consecutive == 1 && $0.window == 3 && $0.patience == 2
                && $0.minSegment == 2 && $0.values.allSatisfy { (0...100).contains($0) } && $0.values.count >= 2
        }
        #expect(cases.count > 60)
        var compared = 0
        for pair in stride(from: 0, to: cases.count - 1, by: 2).map({ (cases[$0], cases[$0 + 1]) }).prefix(12) {
            let (e, h) = pair
            let r = try Self.run(Self.lines("evil", values: e.values, steps: e.steps) + Self.lines("hallucination", values: h.values, steps: h.steps),
                                 ["--preset", "study"])
            #expect(r.status == 0, "\(r.err)")
            for (c, signal) in [(e, "evil"), (h, "hallucination")] {
                let got = Self.methods(r.json, signal: signal)
                #expect(Array(got.keys).sorted() == ["ma-rise", "meanshift", "threshold"])
                for rule in ["threshold", "ma-rise", "meanshift"] {
                    #expect(got[rule]! == c.expected[rule]!.map { c.steps[$0] }, "\(c.name) \(rule)")
                }
                #expect(Self.consensus(r.json, signal: signal) == c.consensusInt, "\(c.name)")
                compared += 1
            }
        }
        #expect(compared == 24)
    }

    @Test func consensusAndRuleParametersAreApplied() throws {
        // Steps 0..9; crosses 30 at step 3, 50 at step 6 (and stays).
        let values: [Double] = [5, 10, 20, 35, 40, 45, 55, 60, 65, 70]
        let lines = Self.lines("evil", values: values, steps: Array(0..<10)) + Self.lines("hallucination", values: values, steps: Array(0..<10))
        let study = try Self.run(lines, ["--preset", "study"])
        #expect(Self.methods(study.json, signal: "evil")["threshold"]! == 6)
        let lowered = try Self.run(lines, ["--preset", "study", "--threshold", "30"])
        #expect(Self.methods(lowered.json, signal: "evil")["threshold"]! == 3)
        let viaRule = try Self.run(lines, ["--preset", "study", "--rule", "threshold.value=30"])
        #expect(Self.methods(viaRule.json, signal: "evil")["threshold"]! == 3)
        // The default preset's threshold needs 2 points; --consecutive 1 makes it one.
        let def = try Self.run(lines, ["--method", "threshold", "--consecutive", "1", "--threshold", "40"])
        #expect(Self.methods(def.json, signal: "evil")["threshold"]! == 4)
        // The default preset's zscore with a 3-checkpoint baseline fits 10 checkpoints.
        let z = try Self.run(lines, ["--method", "zscore", "--baseline", "3", "--rule", "zscore.min_sd=1"])
        #expect(z.status == 0, "\(z.err)")
        #expect(Self.methods(z.json, signal: "evil")["zscore"] != nil)
        let plain = try Self.run(lines, ["--preset", "study", "--consensus", "median"])
        let truncated = try Self.run(lines, ["--preset", "study"])
        let steps = Self.methods(plain.json, signal: "evil").values.compactMap { $0 }.map(Double.init)
        #expect(Self.consensus(plain.json, signal: "evil") == median(steps))
        #expect(Self.consensus(truncated.json, signal: "evil") == median(steps).rounded(.towardZero))
    }

    @Test func unknownRuleParametersAreRefusedWithTheKnownOnes() throws {
        let lines = Self.lines("evil", values: [1, 2, 3, 4, 5], steps: Array(0..<5))
        let bad = try Self.run(lines, ["--preset", "study", "--rule", "ma-rise.min_rise=1"])
        #expect(bad.status == 2 && bad.err.contains("`min_rise` is not a parameter of ma-rise with preset study; use window, patience"), "\(bad.err)")
        let shape = try Self.run(lines, ["--rule", "zscore"])
        #expect(shape.status == 2 && shape.err.contains("expected RULE.KEY=VALUE"), "\(shape.err)")
        let preset = try Self.run(lines, ["--preset", "paper"])
        #expect(preset.status == 2 && preset.err.contains("--preset <preset>") && preset.err.contains("'default' and 'study'"), "\(preset.err)")
    }
}
