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

/// Traits judged on their own question sets: each signal's curve is over its own questions and
/// the cluster bootstrap is stratified by the set of signals sharing each question; with one
/// stratum the draw is the unstratified one, call for call.
@Suite struct ChangePointStrataTests {
    /// Evil on e1-e4, hallucination on h1-h6, coherence on all ten; each evil question's
    /// score rises at checkpoint 6 (step 12), hallucination's at checkpoint 3 (step 6).
    static func records() -> [ScoreRecord] {
        var out: [ScoreRecord] = []
        let evilQ = (1...4).map { "e\($0)" }, halQ = (1...6).map { "h\($0)" }
        for c in 0..<14 {
            let step = 2 * c
            for q in evilQ { for s in 0..<2 { out.append(ScoreRecord(signal: "evil", step: step, questionID: q, sample: s, score: c >= 6 ? 80 : 5)) } }
            for (i, q) in halQ.enumerated() {
                for s in 0..<2 { out.append(ScoreRecord(signal: "hallucination", step: step, questionID: q, sample: s, score: c >= 3 ? 70 + Double(i) : 10)) }
            }
            for q in evilQ + halQ { out.append(ScoreRecord(signal: "coherence", step: step, questionID: q, sample: 0, score: 90 - Double(c))) }
        }
        return out
    }

    static func tables(_ recs: [ScoreRecord], signals: [String]) throws -> [CheckpointTable] {
        try signals.map { s in
            let mine = recs.filter { $0.signal == s }
            return try CheckpointTable(signal: s, records: mine, questions: Array(Set(mine.map(\.questionID))).sorted())
        }
    }

    @Test func oneStratumDrawsExactlyAsTheUnstratifiedBootstrap() throws {
        let recs = ChangePointBootstrapTests.smallStudy(lag: 20).generate(seed: 3)
        let strata = Strata(tables: try Self.tables(recs, signals: ["evil", "hallucination", "coherence"]))
        #expect(strata.members.count == 1 && strata.rows.allSatisfy { $0 == nil })
        let nq = strata.questions.count
        #expect(nq == 20)
        for r in 0..<50 {
            var a = SplitMix64(seed: 0x5EED, stream: UInt64(r)), b = a
            var got = [Double](repeating: 7, count: nq)
            strata.draw(&got, &a)
            // The draw before strata: nq questions with replacement over all questions.
            var want = [Double](repeating: 0, count: nq)
            for _ in 0..<nq { want[b.below(nq)] += 1 }
            #expect(got == want)
            #expect(a.next() == b.next())
        }
    }

    @Test func strataAreTheSetsOfSignalsSharingAQuestion() throws {
        let strata = Strata(tables: try Self.tables(Self.records(), signals: ["evil", "hallucination", "coherence"]))
        #expect(strata.questions == ["e1", "e2", "e3", "e4", "h1", "h2", "h3", "h4", "h5", "h6"])
        #expect(strata.members == [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9]])
        #expect(strata.rows[0] == [0, 1, 2, 3] && strata.rows[1] == [4, 5, 6, 7, 8, 9] && strata.rows[2] == nil)
        var w = [Double](repeating: 0, count: 10), buffer = [Double](repeating: 0, count: 4)
        for r in 0..<200 {
            var rng = SplitMix64(seed: 9, stream: UInt64(r))
            strata.draw(&w, &rng)
            // Each stratum keeps its size: evil always has 4 questions, hallucination 6.
            #expect(w[0..<4].reduce(0, +) == 4 && w[4..<10].reduce(0, +) == 6)
            #expect(strata.weights(of: 0, from: w, into: &buffer) == Array(w[0..<4]))
        }
    }

    @Test func eachSignalIsAnalysedOverItsOwnQuestions() throws {
        let recs = Self.records()
        let config = OnsetConfig(rules: OnsetConfig.studyRules(), signals: SignalSpec.standard, consensus: .medianInt, resamples: 300)
        let rep = try #require(try OnsetAnalysis.analyze(records: recs, config: config).first)
        // Every evil question has the same curve, so every stratified resample has the same
        // evil curve: the interval is the point, defined in every resample.
        let evil = try #require(rep.signal("evil"))
        let iv = try #require(evil.interval)
        #expect(iv.low == evil.consensusStep! && iv.high == evil.consensusStep! && iv.definedFraction == 1)
        #expect(evil.methods.first { $0.method == "threshold" }?.step == 12)
        #expect(rep.signal("hallucination")?.methods.first { $0.method == "threshold" }?.step == 6)
        // The point estimate of each curve is its own questions' mean.
        let halTable = try Self.tables(recs, signals: ["hallucination"])[0]
        #expect(halTable.curve(weights: .init(repeating: 1, count: 6)).last == 72.5)
        #expect(rep.signal("hallucination")?.interval?.definedFraction == 1)
    }
}
