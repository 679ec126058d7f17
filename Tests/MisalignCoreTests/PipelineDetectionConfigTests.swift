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

/// `detection:` with the study preset, rule parameters, consensus and baseline; configs
/// without them keep today's rules and analysis fingerprint.
@Suite struct PipelineDetectionConfigTests {
    let cfg = PipelineConfigTests()

    func parse(_ detection: String) throws -> DetectionSettings {
        try Experiment.parse(cfg.minimal + "\ndetection:\n" + detection, file: "x.yaml", base: cfg.base).detection
    }

    @Test func studyPresetGivesTheStudysRulesAndConsensus() throws {
        let d = try parse("  preset: study\n")
        #expect(d.preset == .study && d.methods == ["threshold", "ma-rise", "meanshift"] && d.consensus == .medianInt)
        let rules = try d.rules()
        #expect(rules[0] is StudyThresholdRule && rules[1] is StudyMovingAverageRule && rules[2] is StudyMeanShiftRule)
        let c = d.onsetConfig(traits: ["evil", "hallucination", "coherence"])
        #expect(c.consensus == .medianInt && c.minAgreeing == 1 && c.signals.count == 3)
    }

    @Test func everyRuleParameterIsSettable() throws {
        let d = try parse("""
              methods: [threshold, ma_rise, meanshift, zscore, cusum, bocpd]
              consensus: median
              min_agreeing: 2
              baseline: 6
              rules:
                threshold: {value: 40, consecutive: 3}
                ma_rise: {width: 5, patience: 3, min_rise: 1.5}
                meanshift: {cost: l1, penalty: 12, min_size: 3, min_shift: 0.5}
                zscore: {baseline: 8, z: 2.5, consecutive: 1, min_sd: 2, robust_sd: false}
                cusum: {drift: 0.25, h: 4, min_sd: 0.5}
                bocpd: {hazard: 50, window: 5, alarm_prob: 0.9, confirm: 2}

            """)
        let r = try d.rules()
        let t = try #require(r[0] as? ThresholdRule), m = try #require(r[1] as? MovingAverageRiseRule)
        let s = try #require(r[2] as? MeanShiftRule), z = try #require(r[3] as? BaselineZRule)
        let c = try #require(r[4] as? CusumRule), b = try #require(r[5] as? BocpdRule)
        #expect(t.threshold == 40 && t.consecutive == 3)
        #expect(m.width == 5 && m.patience == 3 && m.minRise == 1.5)
        #expect(s.model == .l1 && s.penalty == 12 && s.minSize == 3 && s.minShift == 0.5)
        #expect(z.baseline == 8 && z.z == 2.5 && z.consecutive == 1 && z.minSD == 2 && !z.robustSD)
        #expect(c.drift == 0.25 && c.threshold == 4 && c.baseline == 6 && c.minSD == 0.5 && c.robustSD)
        #expect(b.hazardLambda == 50 && b.window == 5 && b.alarmProbability == 0.9 && b.confirm == 2 && b.baseline == 6 && b.minSD == 1)
        let config = d.onsetConfig(traits: ["evil"])
        #expect(config.consensus == .median && config.minAgreeing == 2)
        #expect(d.fingerprintSuffix == " consensus median baseline 6 rules bocpd.alarm_prob=0.9,bocpd.confirm=2.0,bocpd.hazard=50.0,bocpd.window=5.0,"
                + "cusum.drift=0.25,cusum.h=4.0,cusum.min_sd=0.5,ma-rise.min_rise=1.5,ma-rise.patience=3.0,ma-rise.width=5.0,"
                + "meanshift.cost=l1,meanshift.min_shift=0.5,meanshift.min_size=3.0,meanshift.penalty=12.0,"
                + "threshold.consecutive=3.0,threshold.value=40.0,zscore.baseline=8.0,zscore.consecutive=1.0,zscore.min_sd=2.0,zscore.robust_sd=false,zscore.z=2.5")
        let study = try parse("  preset: study\n  rules: {ma-rise: {window: 5, patience: 1}, meanshift: {min_segment: 3}, threshold: {value: 30}}\n")
        let sr = try study.rules()
        #expect((sr[0] as? StudyThresholdRule)?.value == 30 && (sr[1] as? StudyMovingAverageRule)?.window == 5
                && (sr[1] as? StudyMovingAverageRule)?.patience == 1 && (sr[2] as? StudyMeanShiftRule)?.minSegment == 3)
    }

    @Test func withoutTheNewKeysDetectionIsAsBefore() throws {
        let d = try Experiment.parse(cfg.minimal, file: "x.yaml", base: cfg.base).detection
        #expect(d.preset == .default && d.consensus == .majority && d.fingerprintSuffix == "")
        let rules = try d.rules(), old = OnsetConfig.defaultRules(scale: 100)
        #expect(rules.map(\.name) == old.map(\.name))
        #expect(d.onsetConfig(traits: ["evil"]).minAgreeing == 4)
    }

    @Test func mistakesNameTheKeyAndWhatIsAllowed() {
        func message(_ detection: String) -> String {
            "\(cfg.parseError(cfg.minimal + "\ndetection:\n" + detection).map { "\($0)" } ?? "accepted")"
        }
        #expect(message("  preset: paper\n").contains("detection.preset: expected default or study, found text `paper`"))
        #expect(message("  consensus: mode\n").contains("detection.consensus: expected majority, median or median-int, found text `mode`"))
        #expect(message("  rules: {pelt: {pen: 3}}\n").contains("detection.rules: unknown rule `pelt`; use threshold, ma-rise, meanshift, zscore, cusum, bocpd"))
        #expect(message("  preset: study\n  rules: {ma_rise: {min_rise: 3}}\n")
                    .contains("detection.rules: `min_rise` is not a parameter of ma-rise with preset study; use window, patience"))
        #expect(message("  rules: {zscore: {baseline: 1}}\n").contains("detection.rules: zscore.baseline: zscore.baseline must be a whole number >= 2"))
        #expect(message("  rules: {bocpd: {alarm_prob: 1.5}}\n").contains("bocpd.alarm_prob must be in (0, 1)"))
        #expect(message("  rules: {zscore: {robust_sd: 1}}\n").contains("detection.rules: zscore.robust_sd: expected true or false"))
        #expect(message("  baseline: 1\n").contains("detection.baseline: is 1; must be >= 2 checkpoints"))
    }
}
