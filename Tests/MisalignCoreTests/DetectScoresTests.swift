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

/// `detect --scores`: any set of signals, errors that name the file and what was expected,
/// scores outside the scale and negative steps refused, and advice for short series that
/// names the option of this mode.
@Suite struct DetectScoresTests {
    static func line(_ signal: String, _ step: Int, _ q: String, _ score: Double) -> String {
        #"{"signal":"\#(signal)","step":\#(step),"question_id":"\#(q)","sample":0,"score":\#(score)}"#
    }

    /// `checkpoints` checkpoints 0, 10, 20...; each signal rises (or for coherence falls) after the middle.
    static func scores(_ signals: [String], checkpoints: Int) -> String {
        var lines: [String] = []
        for s in signals {
            for c in 0..<checkpoints {
                for q in ["q1", "q2", "q3"] {
                    let late = c >= checkpoints / 2
                    let v = s == "coherence" ? (late ? 30.0 : 90.0) : (late ? 80.0 : 5.0)
                    lines.append(line(s, c * 10, q, v + Double(q.last!.wholeNumberValue!)))
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func errorsNameTheFileTheLineAndTheExpectedType() {
        let f = "judged.jsonl"
        #expect(throws: ChangePointError.invalidInput(field: "judged.jsonl line 2", reason: "not valid JSON: expected a string key at byte 1")) {
            try ScoreRecord.parseJSONL(Self.line("evil", 0, "q", 1) + "\n{", file: f)
        }
        #expect(throws: ChangePointError.invalidInput(field: "judged.jsonl line 1: sample", reason: "is a number (0.5), expected an integer (answer index)")) {
            try ScoreRecord.parseJSONL(#"{"signal":"evil","step":0,"question_id":"q","sample":0.5,"score":1}"#, file: f)
        }
        #expect(throws: ChangePointError.invalidInput(field: "judged.jsonl line 1: seed", reason: "is a string (\"1\"), expected an integer")) {
            try ScoreRecord.parseJSONL(#"{"signal":"evil","step":0,"question_id":"q","sample":0,"score":1,"seed":"1"}"#, file: f)
        }
        #expect(throws: ChangePointError.invalidInput(field: "judged.jsonl line 1", reason: "is a JSON array, expected an object {\"signal\", \"step\", \"question_id\", \"sample\", \"score\"}")) {
            try ScoreRecord.parseJSONL("[1, 2]", file: f)
        }
        #expect(throws: ChangePointError.invalidInput(field: "judged.jsonl", reason: "no records (one JSON object per line)")) {
            try ScoreRecord.parseJSONL("\n\n", file: f)
        }
    }

    @Test func scoresOutsideTheScaleAndNegativeStepsAreRefused() throws {
        #expect(throws: ChangePointError.invalidInput(field: "s.jsonl line 1: score", reason: "is 150, outside the judge scale 0-100; fix the record, or set the scale's top with detection.scale")) {
            try ScoreRecord.parseJSONL(Self.line("evil", 0, "q", 150), file: "s.jsonl", scale: 100)
        }
        #expect(throws: ChangePointError.invalidInput(field: "s.jsonl line 1: score", reason: "is -1, outside the judge scale 0-10; fix the record, or set the scale's top with detection.scale")) {
            try ScoreRecord.parseJSONL(Self.line("evil", 0, "q", -1), file: "s.jsonl", scale: 10)
        }
        #expect(throws: ChangePointError.invalidInput(field: "s.jsonl line 1: step", reason: "is -40; steps are optimizer steps, 0 or more")) {
            try ScoreRecord.parseJSONL(Self.line("evil", -40, "q", 1), file: "s.jsonl", scale: 100)
        }
        #expect(try ScoreRecord.parseJSONL(Self.line("evil", 0, "q", 100), scale: 100).count == 1)
    }

    @Test func anySetOfSignalsIsAnalysed() throws {
        let recs = try ScoreRecord.parseJSONL(Self.scores(["sycophancy", "evil", "coherence"], checkpoints: 3))
        #expect(SignalSpec.present(in: recs) == [SignalSpec("evil", .up), SignalSpec("coherence", .down), SignalSpec("sycophancy", .up)])
        #expect(SignalSpec.present(in: recs, directions: ["sycophancy": .down]).last == SignalSpec("sycophancy", .down))
        let evilOnly = try ScoreRecord.parseJSONL(Self.scores(["evil"], checkpoints: 14))
        let reports = try OnsetAnalysis.analyze(records: evilOnly, config: OnsetConfig(signals: SignalSpec.present(in: evilOnly), resamples: 0))
        #expect(reports.count == 1 && reports[0].signals.map(\.signal) == ["evil"] && reports[0].lagSteps == nil)
        #expect(reports[0].signal("evil")?.consensusStep != nil)
    }

    @Test func tooFewCheckpointsNamesTheRuleAndTheOptionThatDropsIt() throws {
        let recs = try ScoreRecord.parseJSONL(Self.scores(["evil"], checkpoints: 5))
        let config = OnsetConfig(signals: SignalSpec.present(in: recs), resamples: 0)
        #expect(throws: ChangePointError.tooFewCheckpoints(signal: "evil", checkpoints: 5, needed: 12, method: "zscore",
                                                           fitting: ["threshold", "ma-rise", "meanshift"])) {
            try OnsetAnalysis.analyze(records: recs, config: config)
        }
        let message = "\(ChangePointError.tooFewCheckpoints(signal: "evil", checkpoints: 5, needed: 12, method: "zscore", fitting: ["threshold", "ma-rise", "meanshift"]))"
        #expect(message == "signal 'evil': 5 checkpoints, but onset rule zscore needs at least 12; leave it out with detection.methods (the rules that work with 5 checkpoints: detection.methods threshold,ma-rise,meanshift) or score more checkpoints (save them more often)")
        #expect(!message.contains("min_size") && !message.contains("--"))
    }
}

@Suite struct DetectScoresCLITests {
    @Test func detectRunsOnEvilAndHallucinationAloneAndGivesAdviceThatApplies() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("judged.jsonl")
        try DetectScoresTests.scores(["evil", "hallucination"], checkpoints: 14).write(to: file, atomically: true, encoding: .utf8)
        let r = try CLI.run(["detect", "--scores", file.path, "--resamples", "20", "--quiet"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("evil") && r.out.contains("hallucination") && !r.out.contains("coherence"))
        #expect(r.out.contains("lag (evil - hallucination): 0 steps"), "\(r.out)")

        try DetectScoresTests.scores(["evil"], checkpoints: 5).write(to: file, atomically: true, encoding: .utf8)
        let short = try CLI.run(["detect", "--scores", file.path, "--resamples", "0"])
        #expect(short.status == 1 && short.err.contains("leave it out with --method") && short.err.contains("--method threshold,ma-rise,meanshift"), "\(short.err)")
        let fitted = try CLI.run(["detect", "--scores", file.path, "--resamples", "0", "--method", "threshold,ma-rise,meanshift"])
        #expect(fitted.status == 0, "\(fitted.err)")
        #expect(fitted.out.contains("needs both signals in the scores"), "\(fitted.out)")

        try (DetectScoresTests.line("evil", 0, "q", 1) + "\n" + DetectScoresTests.line("evil", 10, "q", 101) + "\n").write(to: file, atomically: true, encoding: .utf8)
        let outside = try CLI.run(["detect", "--scores", file.path, "--json"])
        #expect(outside.status != 0 && outside.err.contains("\(file.path) line 2: score") && outside.err.contains("outside the judge scale 0-100"), "\(outside.err)")
        let bad = try CLI.run(["detect", "--scores", file.path, "--signal-direction", "evil"])
        #expect(bad.status == 2 && bad.err.contains("expected NAME=up or NAME=down"), "\(bad.err)")
    }
}
