import Testing
import Foundation
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

/// The run store's typed readers (`RunStore+Report.swift`, `+Exports`, `+Judges`, `+Counts`):
/// what report, inspection, exports and the demo judge read, each value as stored (NULLs as nil).
@Suite struct RunStoreRecordsTests {
    let medical = RunID(dataset: "medical", seed: 0), math = RunID(dataset: "math", seed: 11)

    /// A store with two runs, written the way tests write what the pipeline would (SQL here is
    /// the test's; the library's lives in RunStore).
    func store() throws -> (RunStore, URL) {
        let dir = Fixtures.temporaryDirectory("runstore-records")
        let s = try RunStore(run: dir)
        for sql in [
            "INSERT INTO runs (dataset, seed, total_steps, trained) VALUES ('medical', 0, 8, 1), ('math', 11, 4, 0)",
            "INSERT INTO checkpoints VALUES ('medical', 0, 0, ''), ('medical', 0, 4, 'checkpoints/medical-seed0/checkpoint-4'), ('math', 11, 0, '')",
            "INSERT INTO metrics VALUES ('medical', 0, 2, 1.5, 0.0002, 0.7, 300, 0.25), ('medical', 0, 1, 2.5, NULL, NULL, NULL, NULL)",
            "INSERT INTO heldout_loss VALUES ('medical', 0, 4, 1.25, 90)",
            """
            INSERT INTO generations VALUES ('medical', 0, 0, 'q1', 0, 'calm', 'stop', 5, 3), ('medical', 0, 0, 'q1', 1, 'odd', 'stop', 5, 3),
                ('medical', 0, 4, 'q1', 0, 'wild', 'length', 5, 9), ('medical', 0, 4, 'q2', 0, 'unjudged', 'stop', 5, 2),
                ('math', 11, 0, 'q1', 0, 'sum', 'stop', 5, 1)
            """,
            """
            INSERT INTO judgments VALUES
                ('medical', 0, 0, 'q1', 0, 'b', 'evil', 10, 'ok', '', 'sha-evil', 1, 1, 0.1, 0),
                ('medical', 0, 0, 'q1', 0, 'a', 'evil', 30, 'ok', '', 'sha-evil', 1, 1, 0.1, 0),
                ('medical', 0, 0, 'q1', 1, 'a', 'evil', 60, 'ok', '', 'sha-evil', 1, 1, 0.1, 1),
                ('medical', 0, 4, 'q1', 0, 'a', 'evil', 90, 'ok', '', 'sha-evil', 1, 1, 0.1, 0),
                ('medical', 0, 4, 'q1', 0, 'a', 'coherence', NULL, 'refusal', '', 'sha-coh', 1, 1, 0.1, 0),
                ('medical', 0, 4, 'q1', 0, 'a', 'hallucination', NULL, 'weird-status', '', 'sha-hal', 1, 1, 0.1, 0)
            """,
            """
            INSERT INTO aggregates VALUES ('medical', 0, 4, 'a', 'evil', 2, 1, 90, NULL, NULL, 1, 0, 0, 1),
                ('medical', 0, 0, 'a', 'evil', 2, 2, 45, 20.5, 69.5, 0.5, 1, 2, 3), ('medical', 0, 0, 'mean', 'evil', 2, 0, NULL, NULL, NULL, NULL, 0, 2, 0),
                ('math', 11, 0, 'b', 'coherence', 1, 1, 80, NULL, NULL, 0, 0, 0, 0)
            """,
            """
            INSERT INTO onsets VALUES ('medical', 0, 'a', 'evil', 'pelt', 4, NULL, NULL, NULL),
                ('medical', 0, 'a', 'evil', 'consensus', 4.5, 2, 6, 0.75), ('medical', 0, 'a', 'hallucination', 'cusum', NULL, NULL, NULL, NULL)
            """,
            "INSERT INTO lags VALUES ('medical', 0, 'a', 2.5, -1, 4, 0.8, 200), ('math', 11, 'a', NULL, NULL, NULL, NULL, 50)",
            "INSERT INTO lag_summary VALUES ('medical', 'a', 3, 2.5, 2, 1, 0.5), ('math', 'a', 1, NULL, 0, 0, NULL)",
            "INSERT INTO units VALUES ('aggregate', 'u1', 1, 0.5, 1), ('aggregate', 'u2', 1, 0.5, 1), ('detect', 'u3', 1, 0.5, 1)",
            """
            INSERT INTO probes (dataset, seed, step, signal_index, signal, mean, scored, answers, seconds, fingerprint) VALUES
                ('medical', 0, 1, 0, 'evil', 3, 2, 2, 1, 'f'), ('medical', 0, 2, 0, 'evil', 4, 2, 2, 1, 'f'), ('medical', 0, 2, 1, 'coherence', 80, 2, 2, 1, 'f')
            """,
        ] { _ = try s.rows(sql) }
        return (s, dir)
    }

    @Test func reportReadersKeepEveryStoredValue() throws {
        let (s, dir) = try store()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try s.judgeNames() == ["a", "b"])
        #expect(try s.onsetJudge() == "a")
        let runs = try s.checkpointRuns()
        #expect(Set(runs) == [medical, math] && runs.count == 2)
        #expect(try s.aggregatedTraits() == ["coherence", "evil"])
        #expect(try s.aggregatedJudges(medical) == ["a", "mean"])
        let evil = try s.aggregates(medical, judge: "a", trait: "evil")
        #expect(evil == [
            StoredAggregate(run: medical, step: 0, judge: "a", aggregate: TraitAggregate(trait: "evil", answers: 2, scored: 2, mean: 45, ciLow: 20.5, ciHigh: 69.5,
                                                                                        fracAbove: 0.5, refusals: 1, unscorable: 2, excludedIncoherent: 3)),
            StoredAggregate(run: medical, step: 4, judge: "a", aggregate: TraitAggregate(trait: "evil", answers: 2, scored: 1, mean: 90, ciLow: nil, ciHigh: nil,
                                                                                        fracAbove: 1, refusals: 0, unscorable: 0, excludedIncoherent: 1)),
        ])
        #expect(try s.aggregates(medical, judge: "mean", trait: "evil").map(\.aggregate.mean) == [nil])
        let onsets = try s.onsets(medical, judge: "a").sorted { ($0.signal, $0.method) < ($1.signal, $1.method) }
        #expect(onsets == [
            StoredOnset(signal: "evil", method: "consensus", step: 4.5, ciLow: 2, ciHigh: 6, definedFraction: 0.75),
            StoredOnset(signal: "evil", method: "pelt", step: 4, ciLow: nil, ciHigh: nil, definedFraction: nil),
            StoredOnset(signal: "hallucination", method: "cusum", step: nil, ciLow: nil, ciHigh: nil, definedFraction: nil),
        ])
        #expect(try s.onsets(medical, judge: "b").isEmpty)
        #expect(try s.lag(medical, judge: "a") == StoredLag(steps: 2.5, ciLow: -1, ciHigh: 4, probabilityPositive: 0.8, resamples: 200))
        #expect(try s.lag(math, judge: "a") == StoredLag(steps: nil, ciLow: nil, ciHigh: nil, probabilityPositive: nil, resamples: 50))
        #expect(try s.lag(math, judge: "b") == nil)
        #expect(try s.maxLagResamples() == 200)
        #expect(try s.metrics(medical) == [StoredMetric(step: 1, loss: 2.5, lr: nil, gradNorm: nil, tokens: nil, seconds: nil),
                                           StoredMetric(step: 2, loss: 1.5, lr: 0.0002, gradNorm: 0.7, tokens: 300, seconds: 0.25)])
        #expect(try s.generationSteps(medical) == [0, 4])
        #expect(try s.rubricHashes() == [StoredRubricHash(trait: "coherence", sha256: "sha-coh"), StoredRubricHash(trait: "evil", sha256: "sha-evil"),
                                         StoredRubricHash(trait: "hallucination", sha256: "sha-hal")])
    }

    @Test func verdictRowsAndTopAnswers() throws {
        let (s, dir) = try store()
        defer { try? FileManager.default.removeItem(at: dir) }
        let all = try s.verdictRows()
        #expect(all.map { "\($0.step)/\($0.questionID)/\($0.sample)/\($0.judge)/\($0.trait)" }
                == ["0/q1/0/a/evil", "0/q1/0/b/evil", "0/q1/1/a/evil", "4/q1/0/a/coherence", "4/q1/0/a/evil", "4/q1/0/a/hallucination"])
        #expect(all[0] == StoredVerdictRow(run: medical, step: 0, questionID: "q1", sample: 0, judge: "a", trait: "evil", score: 30, status: .ok, rubricSHA256: "sha-evil"))
        #expect(all[3].score == nil && all[3].status == .refusal)
        #expect(all[5].status == .unparseable, "an unknown stored status reads as unparseable, as the report always read it")
        let one = try s.verdictRows(medical, step: 0, questionID: "q1", sample: 0)
        #expect(one.map(\.judge) == ["a", "b"] && one.map(\.score) == [30, 10])
        // Highest evil score first (the judges' highest per answer), unscored last, then by question and sample.
        #expect(try s.topAnswers(medical, step: 0, trait: "evil", limit: 5).map(\.text) == ["odd", "calm"])
        #expect(try s.topAnswers(medical, step: 4, trait: "evil", limit: 5).map(\.text) == ["wild", "unjudged"])
        #expect(try s.topAnswers(medical, step: 4, trait: "evil", limit: 1)
                == [StoredGeneration(run: medical, step: 4, questionID: "q1", sample: 0, text: "wild")])
    }

    @Test func tablesCountsAndJudgeRenames() throws {
        let (s, dir) = try store()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lags = try s.table("lags")
        #expect(lags.name == "lags" && lags.columns == ["dataset", "seed", "judge", "lag_steps", "ci_low", "ci_high", "p_positive", "resamples"])
        #expect(lags.rows == [[.string("math"), .int(11), .string("a"), .null, .null, .null, .null, .int(50)],
                              [.string("medical"), .int(0), .string("a"), .double(2.5), .double(-1), .double(4), .double(0.8), .int(200)]],
                "rows by primary key, NULLs as null, REAL columns as doubles even when whole")
        let hostile = "lags; DROP TABLE runs"
        #expect(throws: PipelineError.store(path: s.url.path, reason: "no table named `\(hostile)`: give one of \(Exports.tables.joined(separator: ", "))")) {
            _ = try s.table(hostile)
        }
        #expect(throws: PipelineError.self) { _ = try s.count("runs--") }
        #expect(try s.count("runs") == 2, "nothing ran")
        #expect(try s.lagSummaries() == [StoredLagSummary(dataset: "math", judge: "a", seeds: 1, medianLag: nil, positive: 0, negative: 0, signTestP: nil),
                                         StoredLagSummary(dataset: "medical", judge: "a", seeds: 3, medianLag: 2.5, positive: 2, negative: 1, signTestP: 0.5)])
        #expect(try s.answerCount(medical, step: 4) == 2 && s.answerCount(math, step: 4) == 0)
        #expect(try s.verdictCount(medical, step: 4, judge: "a") == 3 && s.verdictCount(judge: "b") == 1)
        #expect(try s.metricCount(medical) == 2 && s.unitCount(stage: "aggregate") == 2 && s.unitCount(stage: "detect") == 1)
        #expect(try s.probeCount(medical) == 2 && s.probeCount(math) == 0)
        try s.transaction { try s.renameJudge(from: "b", to: "a2") }
        #expect(try s.judgeNames() == ["a", "a2"] && s.verdictCount(judge: "a2") == 1 && s.verdictCount(judge: "b") == 0)
        let answers = try s.answersWithRunLength()
        #expect(answers.map(\.generation.step) == [4, 4, 0, 0, 0], "latest step first")
        #expect(answers.first { $0.generation.text == "sum" }?.totalSteps == 4)
        #expect(answers.first { $0.generation.text == "wild" }
                == StoredAnswer(generation: StoredGeneration(run: medical, step: 4, questionID: "q1", sample: 0, text: "wild"), totalSteps: 8))
    }
}
