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

/// Two stand-in judges: the judges' per-answer mean is aggregated as judge `mean` beside each
/// judge's own, `detection.judge: mean` detects on it, and the report draws it beside them.
@Suite struct PipelineJudgeMeanTests {
    /// A second judge that disagrees with the fixture's: another score from the prompt's hash.
    static func otherJudge() throws -> MockJudgeServer {
        try MockJudgeServer { req, _ in
            let v = (Int(SHA256.hex(req.prompt).suffix(4), radix: 16)! * 7 + 13) % 101
            return .respond(status: 200, headers: [], body: MockJudgeServer.openAIBody(content: "\(v)", top: [("\(v)", log(0.9))],
                                                                                        promptTokens: 120, completionTokens: 1))
        }
    }

    static func config(_ f: PipelineFixture, second: MockJudgeServer, detection: String) -> String {
        var text = f.config(maxInFlight: 4)
        let first = "openai:mock-judge@\(f.server.baseURL)"
        text = text.replacingOccurrences(of: "  math: math.jsonl\n", with: "")
            .replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]")
            .replacingOccurrences(of: "models: [\"\(first)\"]", with: "models: [\"\(first)\", \"openai:other-judge@\(second.baseURL)\"]")
        let cut = text.range(of: "  pricing:")!.lowerBound
        return String(text[..<cut]) + detection
    }

    @Test func meanOfTheJudgesIsAggregatedDetectedAndReported() async throws {
        let f = try PipelineFixture("pipeline-judge-mean")
        let second = try Self.otherJudge()
        defer { second.stop() }
        let e = try Experiment.load(from: f.writeConfig(Self.config(f, second: second, detection: """
            detection:
              judge: mean
              methods: [threshold, ma-rise, meanshift]
              preset: study
              resamples: 20

            """)))
        #expect(e.detection.judge == "mean" && e.detection.preset == .study && e.judges.names.count == 2)
        _ = try await PipelineRunner(e).run()
        let store = try RunStore(run: e.output, create: false)
        let steps = try store.rows("SELECT step FROM checkpoints ORDER BY step").compactMap { $0[0].int }
        #expect(steps == [0, 2, 4, 6])
        #expect(try store.count("aggregates") == 4 * 3 * 3)

        // Per answer and trait: the mean of the judges' ok scores; per checkpoint: their mean.
        let verdicts = try store.rows("SELECT step, question_id, sample, trait, score FROM judgments WHERE status = 'ok' AND score IS NOT NULL ORDER BY judge")
        var perAnswer: [String: [Double]] = [:]
        for v in verdicts { perAnswer["\(v[0].int!)|\(v[1].text!)|\(v[2].int!)|\(v[3].text!)", default: []].append(v[4].double!) }
        #expect(perAnswer.values.contains { $0.count == 2 && $0[0] != $0[1] }, "the stand-in judges should disagree somewhere")
        var records: [ScoreRecord] = []
        for (key, xs) in perAnswer {
            let p = key.split(separator: "|").map(String.init)
            records.append(ScoreRecord(signal: p[3], step: Int(p[0])!, questionID: p[1], sample: Int(p[2])!,
                                       score: xs.reduce(0, +) / Double(xs.count), dataset: "medical", seed: 0))
        }
        for step in steps {
            for trait in e.judges.traits {
                let mine = records.filter { $0.step == step && $0.signal == trait }.map(\.score)
                let row = try store.rows("SELECT mean, scored FROM aggregates WHERE judge = 'mean' AND step = ?1 AND trait = ?2", [.int(Int64(step)), .text(trait)])
                #expect(row.count == 1 && row[0][1].int == mine.count)
                #expect(abs(row[0][0].double! - mine.reduce(0, +) / Double(mine.count)) < 1e-9, "\(step) \(trait)")
            }
        }

        // Detection read the mean: the stored onsets are the analysis of the per-answer means.
        let config = e.detection.onsetConfig(traits: e.judges.traits)
        let expected = try #require(try OnsetAnalysis.analyze(records: records.sorted { ($0.signal, $0.step, $0.questionID, $0.sample) < ($1.signal, $1.step, $1.questionID, $1.sample) },
                                                                config: config).first)
        let onsets = try store.rows("SELECT signal, method, step FROM onsets WHERE judge = 'mean'")
        #expect(onsets.count == 3 * 4)
        for s in expected.signals {
            for m in s.methods {
                let got = onsets.first { $0[0].text == s.signal && $0[1].text == m.method }
                #expect(got?[2].double == m.step.map(Double.init), "\(s.signal) \(m.method)")
            }
            #expect(onsets.first { $0[0].text == s.signal && $0[1].text == "consensus" }?[2].double == s.consensusStep)
        }
        #expect(try store.count("onsets", where: "judge != 'mean'") == 0)

        // The report: one curve per judge and the mean; agreement between the two judges only.
        let input = try ReportInput.load(runDirectory: e.output)
        let curves = try #require(input.runs.first?.byJudge)
        #expect(curves.map(\.judge) == e.judges.names + ["mean"])
        let meanEvil = try #require(curves.last?.series.first { $0.signal == "evil" })
        let stored = try store.rows("SELECT mean FROM aggregates WHERE judge = 'mean' AND trait = 'evil' ORDER BY step").compactMap { $0[0].double }
        #expect(meanEvil.points.map(\.mean) == stored)
        #expect(Set(input.agreement.flatMap { [$0.judgeA, $0.judgeB] }) == Set(e.judges.names))
        let html = HTMLReport.render(input)
        #expect(html.contains("medical, seed 0: judges") && html.contains("mean of the judges"))
    }

    @Test func theFirstJudgeStaysTheDefaultAndMeanNeedsTwoJudges() throws {
        let f = try PipelineFixture("pipeline-judge-mean-config")
        let second = try Self.otherJudge()
        defer { second.stop() }
        let two = try Experiment.parse(Self.config(f, second: second, detection: ""), file: "x.yaml", base: f.dir)
        #expect(two.detection.judge == two.judges.names[0] && two.detection.preset == .default && two.detection.consensus == .majority)
        // With judge: mean, the monitor's probes go to the first judge (mean is no judge to ask).
        let mean = try Experiment.parse(Self.config(f, second: second, detection: "detection: {judge: mean}\n"), file: "x.yaml", base: f.dir)
        #expect(mean.detection.judge == "mean")
        #expect(try PipelineRunner(mean).makeMonitorJudge().id == "openai:mock-judge")
        do {
            _ = try Experiment.parse(f.config(extra: "").replacingOccurrences(of: "  methods: [threshold, meanshift]", with: "  judge: mean\n  methods: [threshold, meanshift]"),
                                     file: "x.yaml", base: f.dir)
            Issue.record("judge: mean with one judge was accepted")
        } catch {
            #expect("\(error)".contains("detection.judge") && "\(error)".contains("`mean` averages two or more judges; judges.models lists 1"), "\(error)")
        }
    }
}
