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

/// Numeric options of `generate`, `judge` and `detect`: a negative number is a value, not a
/// flag ("Missing value" before), NaN and absurd sizes are refused before any work with the
/// bound in the message (`generate --samples 1e12` used to hang), all as usage errors (exit 2).
@Suite struct CLINumberTests {
    @Test func outOfRangeNumbersAreUsageErrorsWithTheReason() throws {
        let dir = Fixtures.temporaryDirectory("cli-numbers")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("model")
        try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: 3, to: model)
        let answers = dir.appendingPathComponent("answers.jsonl")
        try #"{"id":"a","question_id":"q","question":"Q?","answer":"A."}"#.write(to: answers, atomically: true, encoding: .utf8)
        let scores = Fixtures.url("changepoint/example_scores.jsonl").path
        let generate = ["generate", "--model", model.path, "--tokenizer", Fixtures.url("tokenizer").path, "--prompt", "hi"]
        let judge = ["judge", "--answers", answers.path, "--trait", "evil", "--judge", "openai:m@http://127.0.0.1:1/v1",
                     "--out", dir.appendingPathComponent("v.jsonl").path]
        let detect = ["detect", "--scores", scores]
        let cases: [([String], [String])] = [
            (generate + ["--samples", "-1"], ["--samples is -1; must be >= 1"]),
            (generate + ["--samples", "1000000000000"], ["--samples is 1000000000000; must be <= 10000"]),
            (generate + ["--max-new-tokens", "0"], ["--max-new-tokens is 0"]),
            (generate + ["--temperature", "-0.5"], ["--temperature is -0.5; must be >= 0"]),
            (generate + ["--temperature", "nan"], ["--temperature is nan; must be >= 0"]),
            (generate + ["--top-p", "-1"], ["--top-p is -1.0; must be in (0, 1]"]),
            (judge + ["--max-in-flight", "-4"], ["--max-in-flight is -4"]),
            (judge + ["--timeout", "nan"], ["--timeout is nan"]),
            (judge + ["--min-mass", "-0.1"], ["--min-mass is -0.1"]),
            (judge + ["--rpm", "-60"], ["--rpm is -60.0"]),
            (detect + ["--resamples", "-1"], ["--resamples is -1"]),
            (detect + ["--resamples", "1000000000000"], ["--resamples is 1000000000000; must be <= 1000000"]),
            (detect + ["--confidence", "1.5"], ["--confidence is 1.5"]),
            (detect + ["--scale", "-100"], ["--scale must be a positive number"]),
        ]
        for (args, needles) in cases {
            let r = try CLI.run(args)
            #expect(r.status == 2, "\(args.suffix(2)): exit \(r.status)\n\(r.err)")
            #expect(!r.err.contains("Missing value"), "\(args.suffix(2)): \(r.err)")
            for n in needles { #expect(r.err.contains(n), "\(args.suffix(2)): \(r.err)") }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("v.jsonl").path))
    }
}
