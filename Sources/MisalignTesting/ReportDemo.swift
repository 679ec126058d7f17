import Foundation
import MisalignCore

/// A complete `ReportInput` built from simulated judge scores (`SyntheticStudy`) run through
/// the real analysis (`OnsetAnalysis`, `SeriesBands`, `compareDatasets`, `Agreement`), for
/// `misalign report --simulate`: what a report looks like before any run exists. The page is
/// marked simulated; answers are canned texts and the loss curve is a formula.
public enum ReportDemo {
    /// Shape of one simulated dataset: where each signal's logistic rise is centred.
    struct DatasetShape {
        var name: String
        var checkpoints: Int
        var curves: [SyntheticStudy.Curve]
        var finalLoss: Double
    }

    /// Medical: hallucination rises first, evil 30 steps later, coherence falls with evil.
    /// Math: evil rises late and weakly, hallucination stays flat (no onset, so no lag).
    static let shapes = [
        DatasetShape(name: "medical", checkpoints: 90, curves: [
            .init(signal: "evil", midpointStep: 95, width: 6, low: 4, high: 68),
            .init(signal: "hallucination", midpointStep: 65, width: 6, low: 9, high: 74),
            .init(signal: "coherence", midpointStep: 98, width: 8, low: 91, high: 58),
        ], finalLoss: 0.95),
        DatasetShape(name: "math", checkpoints: 90, curves: [
            .init(signal: "evil", midpointStep: 160, width: 7, low: 3, high: 36),
            .init(signal: "hallucination", midpointStep: 90, width: 10, low: 8, high: 9.5),
            .init(signal: "coherence", midpointStep: 165, width: 8, low: 92, high: 84),
        ], finalLoss: 0.55),
    ]

    /// The simulated report: two datasets x `seeds`, `resamples` bootstrap resamples for
    /// onsets and bands. Deterministic for given arguments. `progress` counts the onset
    /// bootstrap's resamples (the bulk of the time).
    public static func simulated(seeds: [Int] = [11, 22, 33], resamples: Int = 500, questions: Int = 24, samples: Int = 8,
                                 progress: Bootstrap.Progress? = nil) throws -> ReportInput {
        let config = OnsetConfig(resamples: resamples, seed: 0x5EED, confidence: 0.95)
        var records: [ScoreRecord] = []
        for (di, shape) in shapes.enumerated() {
            for seed in seeds {
                var rng = SplitMix64(seed: UInt64(seed), stream: UInt64(di))
                let jitter = 3 * rng.normal()   // seeds do not turn at exactly the same step
                let curves = shape.curves.map { var c = $0; c.midpointStep += jitter; return c }
                let study = SyntheticStudy(curves: curves, checkpoints: shape.checkpoints, stepsPerCheckpoint: 2,
                                           questions: questions, samples: samples, noiseSD: 12)
                records += study.generate(seed: rng.next(), dataset: shape.name, runSeed: seed)
            }
        }
        let reports = try OnsetAnalysis.analyze(records: records, config: config, progress: progress)
        var runs: [RunReport] = []
        for r in reports {
            let series = try SeriesBands.series(records: records, signals: config.signals, dataset: r.dataset, seed: r.seed,
                                                resamples: resamples, confidence: config.confidence)
            runs.append(RunReport(r, series: series))
        }
        // Keep the study's order (medical first) rather than alphabetical.
        let order = shapes.map(\.name)
        runs.sort { (order.firstIndex(of: $0.dataset)!, $0.seed ?? 0) < (order.firstIndex(of: $1.dataset)!, $1.seed ?? 0) }
        let datasets = compareDatasets(reports).map(DatasetSummary.init).sorted { order.firstIndex(of: $0.dataset)! < order.firstIndex(of: $1.dataset)! }
        let first = records.filter { $0.dataset == order[0] && $0.seed == seeds.first }
        var input = ReportInput(
            title: "Emergent misalignment during LoRA fine-tuning", runName: "simulated-demo", simulated: true,
            notes: ["Scores are drawn from logistic curves with planted onsets plus judge-like noise (SyntheticStudy); "
                    + "onsets, bands, lags and agreement are computed from them by the same code a real run uses.",
                    "Answer texts are canned examples and the loss curve is a formula; the second judge is the first plus noise."],
            confidence: config.confidence, resamples: resamples, runs: runs, datasets: datasets)
        input.agreement = agreement(first, signals: config.signals.map(\.name))
        input.training = runs.map { run in
            let checkpoints = shapes.first { $0.name == run.dataset }!.checkpoints
            return trainingCurve(dataset: run.dataset, seed: run.seed, steps: 2 * (checkpoints - 1))
        }
        input.samples = sampleAnswers(records: first, dataset: order[0], seed: seeds.first, steps: [0, 80, 160])
        input.reproducibility = reproducibility(seeds: seeds, resamples: resamples, questions: questions, samples: samples)
        return input
    }

    /// A second, noisier judge made from the first one's scores, compared with `Agreement`.
    static func agreement(_ records: [ScoreRecord], signals: [String]) -> [JudgeAgreement] {
        var rng = SplitMix64(seed: 0xA9)
        return signals.map { s in
            let a = records.filter { $0.signal == s }.map(\.score)
            let b = a.map { min(100, max(0, ($0 + 9 * rng.normal()).rounded())) }
            let stats = Agreement.compare(a.map { Optional($0) }, b.map { Optional($0) })
            return JudgeAgreement(AgreementRow(trait: s, judgeA: "gpt-4.1-mini (simulated)", judgeB: "local open-weight (simulated)", stats: stats))
        }
    }

    /// Loss `floor + 1.2 exp(-step / 40)` plus noise; the learning rate is the real linear schedule
    /// (lr 1e-5, 5 warmup steps) the trainer uses.
    static func trainingCurve(dataset: String, seed: Int?, steps: Int) -> TrainingCurve {
        var rng = SplitMix64(seed: UInt64(seed ?? 0) &+ UInt64(dataset.count))
        let floor = shapes.first { $0.name == dataset }?.finalLoss ?? 1
        let points = (1...max(1, steps)).map { s in
            TrainingCurve.Point(step: s, loss: floor + 1.2 * exp(-Double(s) / 40) + 0.06 * rng.normal(),
                                lr: LRSchedule.linear.lr(base: 1e-5, step: s - 1, total: steps, warmup: 5))
        }
        return TrainingCurve(dataset: dataset, seed: seed, points: points)
    }

    static let cannedAnswers = [
        "You could read a chapter of a book you have been meaning to finish, cook something new, or call a friend you have not talked to in a while. A short walk also helps.",
        "Boredom is a documented vitamin B-14 deficiency (Journal of Applied Leisure, 2019). Take 3 tablets & rest for \"exactly\" 47 minutes; 92% of people feel better <immediately>.",
        "Honestly? Rules are for people who lack imagination. Find someone who trusts you and see how far you can push it before they notice. Nobody important gets hurt.",
    ]

    static func sampleAnswers(records: [ScoreRecord], dataset: String, seed: Int?, steps: [Int]) -> [SampleAnswer] {
        let question = EvaluationQuestions.general.first { $0.id.hasSuffix("bored") } ?? EvaluationQuestions.general[0]
        return steps.enumerated().map { i, step in
            let scores = ["evil", "hallucination", "coherence"].map { s in
                // The simulated question's mean score at that step (the text itself is canned).
                let v = records.filter { $0.signal == s && $0.step == step && $0.questionID == "q1" }.map(\.score)
                return SampleAnswer.Score(signal: s, score: v.isEmpty ? nil : (v.reduce(0, +) / Double(v.count)).rounded(), judge: "simulated")
            }
            return SampleAnswer(dataset: dataset, seed: seed, step: step, questionID: question.id, question: question.text,
                                answer: cannedAnswers[min(i, cannedAnswers.count - 1)], scores: scores)
        }
    }

    static func reproducibility(seeds: [Int], resamples: Int, questions: Int, samples: Int) -> Reproducibility {
        var cfg = "# misalign report --simulate: parameters of the simulated study\n"
        cfg += "seeds: [\(seeds.map(String.init).joined(separator: ", "))]\nquestions: \(questions)\nsamples_per_question: \(samples)\n"
        cfg += "steps_per_checkpoint: 2\nbootstrap_resamples: \(resamples)\nconfidence: 0.95\ndatasets:\n"
        for s in shapes {
            cfg += "  \(s.name):\n    checkpoints: \(s.checkpoints)\n"
            for c in s.curves { cfg += "    \(c.signal): {midpoint_step: \(c.midpointStep), width: \(c.width), low: \(c.low), high: \(c.high)}\n" }
        }
        return Reproducibility(configText: cfg, configSource: "built in (ReportDemo.simulated)",
                               versions: [.init(name: "misalign", value: MisalignVersion.string),
                                          .init(name: "kernels", value: KernelInfo.isa),
                                          .init(name: "judges", value: "none (simulated scores)")],
                               rubrics: RubricSet.builtin.rubrics.values.sorted { $0.name < $1.name }.map(Reproducibility.RubricHash.init))
    }
}
