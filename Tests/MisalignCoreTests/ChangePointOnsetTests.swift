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

/// Known-answer tests with planted onsets, and false-alarm rates on null series.
@Suite struct ChangePointOnsetTests {
    /// A step of `shift` noise sds at index `at` in a series of N(0, 1) noise.
    static func stepSeries(_ rng: inout SplitMix64, n: Int, at: Int, shift: Double) -> [Double] {
        (0..<n).map { ($0 >= at ? shift : 0) + rng.normal() }
    }

    /// The mean curve of one signal of a synthetic study (noise of a 40-question x 20-sample mean).
    static func studyCurve(_ study: SyntheticStudy, signal: String, seed: UInt64) throws -> [Double] {
        let recs = study.generate(seed: seed).filter { $0.signal == signal }
        let qs = Array(Set(recs.map(\.questionID))).sorted()
        let t = try CheckpointTable(signal: signal, records: recs, questions: qs)
        return t.curve(weights: .init(repeating: 1, count: qs.count))
    }

    @Test func thresholdNeedsConsecutivePointsAndHandlesDirection() throws {
        // One spike above 50 is ignored with m = 2; the sustained crossing at index 6 is found.
        let x: [Double] = [10, 12, 55, 11, 14, 30, 52, 60, 70]
        #expect(try ThresholdRule(threshold: 50, consecutive: 2).onset(x, direction: .up, series: "x") == 6)
        #expect(try ThresholdRule(threshold: 50, consecutive: 1).onset(x, direction: .up, series: "x") == 2)
        // Coherence falls: at or below 50.
        let y: [Double] = [90, 88, 85, 49, 60, 50, 40, 30]
        #expect(try ThresholdRule(threshold: 50, consecutive: 2).onset(y, direction: .down, series: "y") == 5)
        #expect(try ThresholdRule(threshold: 95, consecutive: 2).onset(y, direction: .up, series: "y") == nil)
    }

    @Test func sigmoidOnsetOnJudgeScaleDetectedByEveryRule() throws {
        // Planted: hallucination logistic with midpoint at step 180 (checkpoint 90), width 8 steps;
        // the rise "starts" (5% of it) at step 180 + 8 ln(1/19) = 156.4. Each rule targets a
        // slightly different point of the rise, so each gets the window it should land in:
        // threshold 50 on a 10 -> 75 rise is crossed at 42.5% of the rise (step 177.6).
        let study = SyntheticStudy.study(hallucinationMidpoint: 180, lag: 40)
        let curve = study.curves.first { $0.signal == "hallucination" }!
        let start = curve.step(atFraction: 0.05), crossing = curve.step(atFraction: (50 - 10) / 65.0)
        let rules = OnsetConfig.defaultRules(scale: 100)
        let windows: [String: ClosedRange<Double>] = [
            "threshold": (crossing - 6)...(crossing + 6),
            "ma-rise": (start - 20)...(curve.midpointStep),
            "meanshift": (start - 10)...(curve.midpointStep),
            "zscore": (start - 10)...(curve.midpointStep),
            // CUSUM's estimate is where its sum last left zero: it can catch the first percent
            // of the rise (the curve is at 0.25% of it at step 132).
            "cusum": (start - 30)...(curve.midpointStep),
            "bocpd": (start - 20)...(curve.midpointStep + 10),
        ]
        var hits: [String: Int] = [:]
        let trials = 10
        for t in 0..<trials {
            let x = try Self.studyCurve(study, signal: "hallucination", seed: 100 + UInt64(t))
            for r in rules {
                let i = try r.onset(x, direction: .up, series: "h")
                if let i, windows[r.name]!.contains(Double(i * 2)) { hits[r.name, default: 0] += 1 } else { print("miss \(r.name): step \(i.map { $0 * 2 } ?? -1) window \(windows[r.name]!)") }
            }
        }
        print("sigmoid onset hits per rule (of \(trials)): \(hits)")
        for r in rules { #expect(hits[r.name, default: 0] >= trials - 1, "rule \(r.name)") }
    }

    @Test func nullStudyRarelyGivesAConsensusOnset() throws {
        // Flat curves (no rise at all): the consensus needs 4 of 6 rules and should almost never
        // form (measured: 0 of 20).
        var study = SyntheticStudy.study()
        study.curves = study.curves.map { var c = $0; c.high = c.low; return c }
        let config = OnsetConfig(resamples: 0)
        var falseOnsets = 0, perRule: [String: Int] = [:]
        let trials = 10
        for t in 0..<trials {
            let x = try Self.studyCurve(study, signal: "hallucination", seed: 500 + UInt64(t))
            let o = try OnsetAnalysis.onsets(x, steps: study.steps, spec: SignalSpec("hallucination", .up), config: config)
            if o.consensusStep != nil { falseOnsets += 1 }
            for m in o.methods where m.index != nil { perRule[m.method, default: 0] += 1 }
        }
        print("null study: consensus false onsets \(falseOnsets)/\(trials), per rule \(perRule)")
        #expect(falseOnsets == 0)
    }

    @Test func zscoreAndMovingAverageOnPlantedStep() throws {
        var rng = SplitMix64(seed: 7)
        var z = 0, ma = 0, zNull = 0
        for _ in 0..<200 {
            // A 5 sd step: each post-change point exceeds mean + 3 sd with probability 0.977.
            let x = Self.stepSeries(&rng, n: 120, at: 60, shift: 5)
            if let i = try BaselineZRule(baseline: 20, z: 3, consecutive: 2).onset(x, direction: .up, series: "x"), (60...63).contains(i) { z += 1 }
            let smooth = (0..<120).map { Double($0 >= 60 ? ($0 - 60) : 0) * 0.5 + 0.05 * rng.normal() }
            if let i = try MovingAverageRiseRule(width: 3, patience: 3, minRise: 0.5).onset(smooth, direction: .up, series: "x"), (58...62).contains(i) { ma += 1 }
            let null = Self.stepSeries(&rng, n: 120, at: 120, shift: 0)
            if try BaselineZRule(baseline: 20, z: 3, consecutive: 2).onset(null, direction: .up, series: "x") != nil { zNull += 1 }
        }
        print("z-score hits \(z)/200, null alarms \(zNull)/200; ma-rise hits \(ma)/200")
        #expect(z >= 180)
        #expect(ma >= 190)
        #expect(zNull <= 20)
    }

    @Test func movingAverageUsesCompleteWindowsOnly() {
        let ma = movingAverage([1, 2, 3, 4, 5], width: 3)
        #expect(ma == [2, 3, 4])
    }

    @Test func cusumDetectsPlantedShiftAtItsAverageRunLength() throws {
        var rng = SplitMix64(seed: 11)
        var detected = 0, early = 0, located = 0, nullAlarms = 0, delays: [Int] = []
        for _ in 0..<300 {
            let x = Self.stepSeries(&rng, n: 200, at: 100, shift: 1.5)
            var c = Cusum(drift: 0.5, threshold: 5, sides: .upper, knownMeanSD: (0, 1))
            for (i, v) in x.enumerated() {
                if let a = c.update(v, step: i) {
                    if i >= 100 { detected += 1; delays.append(i - 100); if abs(a.changeStep - 100) <= 5 { located += 1 } } else { early += 1 }
                    break
                }
            }
            var n = Cusum(drift: 0.5, threshold: 5, sides: .upper, knownMeanSD: (0, 1))
            for (i, v) in Self.stepSeries(&rng, n: 100, at: 100, shift: 0).enumerated() where n.update(v, step: i) != nil { nullAlarms += 1; break }
        }
        let meanDelay = Double(delays.reduce(0, +)) / Double(max(1, delays.count))
        print("CUSUM: detected \(detected)/300 (early \(early)), located +-5: \(located), mean delay \(meanDelay), null alarms in 100 pts \(nullAlarms)/300")
        // Theory (k = 0.5, h = 5): ARL1 for a 1.5 sd shift is about 5.8; one-sided ARL0 about 930,
        // so P(false alarm within 100 points) is about 1 - exp(-100/930) = 10%. Every series
        // alarms: early (a false alarm) or after the change.
        #expect(detected + early == 300)
        #expect(early <= 50 && nullAlarms <= 50)
        #expect(meanDelay < 9)
        #expect(located >= detected * 3 / 4)
    }

    @Test func cusumTwoSidedReportsDirectionAndResets() {
        var c = Cusum(drift: 0.5, threshold: 4, sides: .both, knownMeanSD: (0, 1))
        var alarm: Alarm? = nil
        for i in 0..<20 where alarm == nil { alarm = c.update(i < 5 ? 0 : -2, step: i) }
        #expect(alarm != nil && alarm!.statistic < 0 && alarm!.changeStep == 5)
        c.reset()
        #expect(c.upper == 0 && c.lower == 0)
    }

    @Test func bocpdFindsPlantedChangeAndExposesRunLengthPosterior() throws {
        var rng = SplitMix64(seed: 23)
        var located = 0, nullAlarms = 0
        let trials = 200
        for _ in 0..<trials {
            let x = Self.stepSeries(&rng, n: 150, at: 80, shift: 3)
            var b = Bocpd(prior: .fromBaseline(Array(x[0..<10])))
            var first: Alarm? = nil
            for (i, v) in x.enumerated() { if let a = b.update(v, step: i), first == nil { first = a } }
            if let a = first, abs(a.changeStep - 80) <= 3 { located += 1 }
            // After the whole series the posterior sits on a run that started near the change.
            let sum = b.runLengthPosterior.reduce(0, +)
            #expect(abs(sum - 1) < 1e-9)
            let null = Self.stepSeries(&rng, n: 150, at: 150, shift: 0)
            var n = Bocpd(prior: .fromBaseline(Array(null[0..<10])))
            for (i, v) in null.enumerated() where n.update(v, step: i) != nil { nullAlarms += 1; break }
        }
        print("BOCPD: located +-3: \(located)/\(trials), null alarms \(nullAlarms)/\(trials)")
        // Measured when the defaults were chosen: 195/200 located, 1/200 null alarms.
        #expect(located >= 180)
        #expect(nullAlarms <= 10)
    }

    @Test func bocpdRunLengthMassMovesToTheNewRun() {
        var b = Bocpd(prior: NormalGammaPrior(mu0: 0, kappa0: 0.01, alpha0: 2, beta0: 1), hazardLambda: 50)
        for i in 0..<30 { _ = b.update(i % 2 == 0 ? 0.1 : -0.1, step: i) }
        #expect(b.mapRun!.length >= 25)
        for i in 30..<40 { _ = b.update(8, step: i) }
        // Ten values at the new level: the most probable run is those ten.
        #expect(b.mapRun!.length == 10)
        #expect(abs(b.mapRun!.mean - 8) < 1)
    }
}

/// The training-time monitor: detectors driven one checkpoint at a time through the protocol.
@Suite struct ChangePointOnlineMonitorTests {
    @Test func monitorsRaiseAlarmsOnTheEvilCurveAfterItStartsRising() throws {
        let study = SyntheticStudy.study(hallucinationMidpoint: 180, lag: 40)
        let evil = try ChangePointOnsetTests.studyCurve(study, signal: "evil", seed: 77)
        let steps = study.steps
        let baseline = Array(evil[0..<10])
        let noise = max(Penalty.robustSigma(evil), 1)
        var monitors: [any OnlineDetector] = [
            Cusum(drift: 0.5, threshold: 5, sides: .upper, knownMeanSD: (baseline.reduce(0, +) / 10, noise)),
            Bocpd(prior: .fromBaseline(baseline, minVar: noise * noise), direction: .up),
        ]
        // The planted rise of evil starts (5% of it) at step 220 + 8 ln(1/19) = 196.4.
        let start = study.curves[0].step(atFraction: 0.05)
        for i in monitors.indices {
            var first: Alarm? = nil
            for (v, s) in zip(evil, steps) where first == nil { first = monitors[i].update(v, step: s) }
            let a = try #require(first)
            #expect(Double(a.step) >= start - 20 && Double(a.step) <= study.curves[0].midpointStep, "\(type(of: monitors[i])) alarmed at \(a.step)")
            #expect(a.changeStep <= a.step)
            monitors[i].reset()
            // After a reset the detector has forgotten the rise: the flat start raises nothing.
            for (v, s) in zip(evil.prefix(60), steps) { #expect(monitors[i].update(v, step: s) == nil) }
        }
    }

    @Test func scoreTablesRejectDuplicatesAndHoles() {
        let a = ScoreRecord(signal: "evil", step: 0, questionID: "q1", sample: 0, score: 1)
        #expect(throws: ChangePointError.self) { try CheckpointTable(signal: "evil", records: [a, a], questions: ["q1"]) }
        // A checkpoint whose answers are all for an unknown question leaves a hole.
        let b = ScoreRecord(signal: "evil", step: 2, questionID: "q9", sample: 0, score: 1)
        #expect(throws: ChangePointError.self) { try CheckpointTable(signal: "evil", records: [a, b], questions: ["q1"]) }
        // A signal missing from the records is named.
        #expect(throws: ChangePointError.invalidInput(field: "signal", reason: "no records for 'hallucination'")) {
            try OnsetAnalysis.analyze(records: [a], config: OnsetConfig(resamples: 0))
        }
    }
}
