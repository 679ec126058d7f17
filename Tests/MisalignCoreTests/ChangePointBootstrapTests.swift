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

/// The onset analysis from per-answer scores: bootstrap reproducibility, interval coverage,
/// and the across-seed / across-dataset summaries.
@Suite struct ChangePointBootstrapTests {
    /// Hallucination and evil with identical shapes, evil `lag` steps later, so the population
    /// lag of every rule, and hence of the consensus, is exactly `lag` (a whole number of
    /// checkpoints: each rule sees the same curve shifted on the grid).
    static func smallStudy(lag: Double) -> SyntheticStudy {
        SyntheticStudy(curves: [
            .init(signal: "evil", midpointStep: 50 + lag, width: 6, low: 10, high: 75),
            .init(signal: "hallucination", midpointStep: 50, width: 6, low: 10, high: 75),
            .init(signal: "coherence", midpointStep: 50 + lag, width: 6, low: 90, high: 55),
        ], checkpoints: 60, questions: 20, samples: 4)
    }

    @Test func bootstrapIsSeededAndReproducible() throws {
        let recs = Self.smallStudy(lag: 20).generate(seed: 1)
        let a = try OnsetAnalysis.analyze(records: recs, config: OnsetConfig(resamples: 300, seed: 42))
        let b = try OnsetAnalysis.analyze(records: recs, config: OnsetConfig(resamples: 300, seed: 42))
        let c = try OnsetAnalysis.analyze(records: recs, config: OnsetConfig(resamples: 300, seed: 43))
        #expect(a == b)
        #expect(a[0].lagInterval != nil && a[0].probabilityLagPositive != nil)
        #expect(a[0].lagInterval != c[0].lagInterval || a[0].signals.map(\.interval) != c[0].signals.map(\.interval))
        // The point estimate does not depend on the bootstrap seed.
        #expect(a[0].lagSteps == c[0].lagSteps)
    }

    @Test func splitMix64MatchesItsReferenceOutput() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c; also the seeding
        // values quoted in the xoshiro reference code).
        var g = SplitMix64(seed: 0)
        #expect(g.next() == 0xE220A8397B1DCDAF)
        #expect(g.next() == 0x6E789E6AA1B965F4)
        #expect(g.next() == 0x06C45D188009454F)
    }

    /// Over many simulated studies with a planted lag of 20 steps, the 90% percentile interval
    /// of the lag covers 20 at about the nominal rate. The percentile bootstrap of a median of
    /// discrete onsets is not exact, so the band is wide but two-sided: too narrow intervals
    /// (under-coverage) and useless ones (always covering) both fail.
    @Test func lagIntervalCoversThePlantedLagAtRoughlyTheNominalRate() throws {
        let study = Self.smallStudy(lag: 20)
        let datasets = 60
        var covered = 0, widths: [Double] = []
        for d in 0..<datasets {
            let recs = study.generate(seed: 1000 + UInt64(d))
            let r = try OnsetAnalysis.analyze(records: recs, config: OnsetConfig(resamples: 200, seed: UInt64(d), confidence: 0.9))[0]
            guard let iv = r.lagInterval else { continue }
            if iv.low <= 20 && 20 <= iv.high { covered += 1 }
            widths.append(iv.high - iv.low)
        }
        let rate = Double(covered) / Double(datasets)
        print("bootstrap coverage of planted lag 20 (nominal 0.90): \(covered)/\(datasets) = \(rate), median width \(median(widths)) steps")
        #expect(rate >= 0.78 && rate <= 1.0)
        #expect(median(widths) < 30)
    }

    @Test func plantedPositiveLagIsConfident() throws {
        let recs = SyntheticStudy.study(hallucinationMidpoint: 150, lag: 40, checkpoints: 150, questions: 30, samples: 5).generate(seed: 9)
        let r = try OnsetAnalysis.analyze(records: recs, config: OnsetConfig(resamples: 300))[0]
        print("planted lag 40: estimate \(r.lagSteps ?? .nan), interval \(String(describing: r.lagInterval)), P(lag>0) \(r.probabilityLagPositive ?? .nan)")
        #expect(r.lagSteps.map { abs($0 - 40) <= 12 } == true)
        #expect((r.probabilityLagPositive ?? 0) > 0.99)
        // Coherence falls: its onset is found with the down direction, near evil's.
        let coh = r.signal("coherence")!.consensusStep!, evil = r.signal("evil")!.consensusStep!
        #expect(abs(coh - evil) <= 16)
    }

    @Test func signTestMatchesScipy() throws {
        let rows = try JSONValue.parse(Data(contentsOf: Fixtures.url("changepoint/sign_tests.json"))).arrayValue!
        for row in rows {
            let p = signTest(positive: row["positive"]!.intValue!, negative: row["negative"]!.intValue!)
            #expect(abs(p - row["p"]!.doubleValue!) < 1e-12, "\(row.serialized())")
        }
    }

    @Test func seedsAndDatasetsAreSummarised() throws {
        var recs: [ScoreRecord] = []
        for seed in 0..<3 {
            recs += Self.smallStudy(lag: 20).generate(seed: 50 + UInt64(seed), dataset: "medical", runSeed: seed)
            recs += Self.smallStudy(lag: -10).generate(seed: 80 + UInt64(seed), dataset: "math", runSeed: seed)
        }
        let reports = try OnsetAnalysis.analyze(records: recs, config: OnsetConfig(resamples: 50))
        #expect(reports.count == 6)
        #expect(reports.map(\.dataset) == ["math", "math", "math", "medical", "medical", "medical"])
        let table = compareDatasets(reports)
        #expect(table.map(\.dataset) == ["math", "medical"])
        let med = table[1], math = table[0]
        #expect(med.seeds.positive == 3 && med.seeds.negative == 0)
        #expect(med.seeds.signTestP == signTest(positive: 3, negative: 0))
        #expect(math.seeds.negative == 3)
        #expect(med.medianOnsets["hallucination"] != nil)
    }

    @Test func perCheckpointMeansGivePointEstimates() throws {
        let study = Self.smallStudy(lag: 20)
        let recs = study.generate(seed: 3)
        var curves: [String: (steps: [Int], values: [Double])] = [:]
        for s in ["evil", "hallucination", "coherence"] {
            let mine = recs.filter { $0.signal == s }
            let t = try CheckpointTable(signal: s, records: mine, questions: Array(Set(mine.map(\.questionID))).sorted())
            curves[s] = (t.steps, t.curve(weights: .init(repeating: 1, count: t.questions.count)))
        }
        let fromCurves = try OnsetAnalysis.analyze(curves: curves, config: OnsetConfig(resamples: 0))
        let fromRecords = try OnsetAnalysis.analyze(records: recs, config: OnsetConfig(resamples: 0))[0]
        #expect(fromCurves.lagSteps == fromRecords.lagSteps)
        #expect(fromCurves.signals.map(\.methods) == fromRecords.signals.map(\.methods))
    }
}

@Suite struct ChangePointJSONTests {
    @Test func reportJSONCarriesOnsetsIntervalsAndLag() throws {
        let recs = ChangePointBootstrapTests.smallStudy(lag: 20).generate(seed: 4, dataset: "medical", runSeed: 2)
        let reports = try OnsetAnalysis.analyze(records: recs, config: OnsetConfig(resamples: 100))
        let v = try JSONValue.parse(OnsetJSON.reports(reports, datasets: compareDatasets(reports)).serialized())
        let run = v["runs"]!.arrayValue![0]
        #expect(run["dataset"]?.stringValue == "medical" && run["seed"]?.intValue == 2)
        #expect(run["lag_steps"]?.doubleValue == reports[0].lagSteps)
        #expect(run["p_lag_positive"]?.doubleValue == reports[0].probabilityLagPositive)
        let sig = run["signals"]!.arrayValue!
        #expect(sig.map { $0["signal"]!.stringValue! } == ["evil", "hallucination", "coherence"])
        #expect(sig[1]["methods"]!.arrayValue!.count == 6)
        #expect(sig[1]["interval"]?["low"]?.doubleValue == reports[0].signals[1].interval?.low)
        #expect(v["datasets"]?.arrayValue?.first?["dataset"]?.stringValue == "medical")
    }
}
