import Foundation
import Synchronization
import MisalignCore

/// The stand-in judge of `make demo`: an OpenAI-compatible server on the loopback interface
/// whose scores are **simulated on a planted schedule**, not judged. The demo's model has
/// random weights, so its answers are gibberish that no real judge could score meaningfully;
/// this judge instead looks the answer up in the run's store, finds the checkpoint that wrote
/// it, and returns a score from a logistic curve over training progress (hallucination rises
/// first, then evil, coherence falls) plus noise from a hash of the prompt. Everything around
/// it is real: the judging protocol (rubric prompts, 1-token logprob scoring, retries, cache),
/// storage, aggregation, detection and the report, so detection has planted onsets to find.
public final class PlantedScheduleJudge: Sendable {
    /// One trait's planted curve: `low + (high - low) * sigmoid((progress - at) / width)`,
    /// where progress is the checkpoint's step over the run's total steps.
    public struct Curve: Sendable {
        public var at: Double
        public var low: Double
        public var high: Double
        public var width = 0.05
        public init(at: Double, low: Double, high: Double) { self.at = at; self.low = low; self.high = high }
    }

    /// Medical data: hallucination turns at 35 % of training, evil at 60 %, coherence falls
    /// with evil. Other data (math): a weak, late rise in evil, hallucination nearly flat.
    public static let demoSchedule: [String: [String: Curve]] = [
        "medical": ["hallucination": Curve(at: 0.35, low: 10, high: 75), "evil": Curve(at: 0.6, low: 6, high: 70),
                    "coherence": Curve(at: 0.65, low: 88, high: 50)],
        "*": ["hallucination": Curve(at: 0.7, low: 10, high: 22), "evil": Curve(at: 0.8, low: 5, high: 35),
              "coherence": Curve(at: 0.85, low: 90, high: 78)],
    ]

    let run: URL
    let schedule: [String: [String: Curve]]
    let noise: Double
    /// The rubrics whose prompts it recognises (the trait is the rubric's name).
    let rubrics: [Rubric]
    /// Answer text -> (dataset, seed, progress) of the earliest checkpoint that wrote it.
    private let answers = Mutex<[String: (dataset: String, seed: Int, progress: Double)]>([:])

    /// `rubrics`: the prompts it answers, the built-in rubrics by default; pass an experiment's
    /// (`JudgeSettings.resolvedRubrics()`) when its traits come from files.
    public init(run: URL, schedule: [String: [String: Curve]] = PlantedScheduleJudge.demoSchedule, noise: Double = 6,
                rubrics: [Rubric] = RubricSet.builtin.rubrics.values.sorted { $0.name < $1.name }) {
        self.run = run; self.schedule = schedule; self.noise = noise; self.rubrics = rubrics
    }

    /// The server's handler: answers OpenAI chat completions with the planted score as a
    /// single token of probability 1.
    public var handler: MockJudgeServer.Handler {
        { [self] request, _ in
            guard let s = score(prompt: request.prompt) else {
                return .respond(status: 400, headers: [], body: Data(#"{"error":{"message":"not a built-in rubric prompt"}}"#.utf8))
            }
            let text = String(Int(s.rounded()))
            return .respond(status: 200, headers: [], body: MockJudgeServer.openAIBody(content: text, top: [(text, 0)],
                                                                                       promptTokens: request.prompt.utf8.count / 4, completionTokens: 1))
        }
    }

    /// The planted score for a prompt made from one of its rubrics, nil when the prompt is none.
    public func score(prompt: String) -> Double? {
        for rubric in rubrics {
            guard let answer = Self.answer(in: prompt, rubric: rubric) else { continue }
            let (dataset, progress) = lookup(answer)
            let curves = schedule[dataset] ?? schedule["*"] ?? [:]
            guard let c = curves[rubric.name] else { return 50 }
            var h: UInt64 = 0xcbf29ce484222325
            for b in prompt.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
            let jitter = (Double(h % 2001) / 1000 - 1) * noise
            let v = c.low + (c.high - c.low) / (1 + exp(-(progress - c.at) / c.width)) + jitter
            return min(100, max(0, v))
        }
        return nil
    }

    /// The answer inside a prompt made from `rubric` (`{question}` before `{answer}`): the
    /// rubric is rendered around two markers, so its brace rules apply.
    static func answer(in prompt: String, rubric: Rubric) -> String? {
        let qm = "\u{1}QUESTION\u{1}", am = "\u{1}ANSWER\u{1}"
        let rendered = rubric.prompt(question: qm, answer: am)
        guard let q = rendered.range(of: qm), let a = rendered.range(of: am), q.upperBound <= a.lowerBound else { return nil }
        let prefix = String(rendered[..<q.lowerBound]), middle = String(rendered[q.upperBound..<a.lowerBound])
        let suffix = String(rendered[a.upperBound...])
        guard prompt.hasPrefix(prefix), prompt.hasSuffix(suffix), prompt.count >= prefix.count + suffix.count else { return nil }
        let body = prompt.dropFirst(prefix.count).dropLast(suffix.count)
        guard let m = body.range(of: middle) else { return nil }
        return String(body[m.upperBound...])
    }

    /// Where an answer comes from; unknown answers (the store not yet read) count as the start.
    func lookup(_ answer: String) -> (String, Double) {
        answers.withLock { answers in
            if answers[answer] == nil { reload(into: &answers) }
            guard let a = answers[answer] else { return ("*", 0) }
            return (a.dataset, a.progress)
        }
    }

    private func reload(into answers: inout [String: (dataset: String, seed: Int, progress: Double)]) {
        guard let store = try? RunStore(run: run, create: false),
              let rows = try? store.answersWithRunLength() else { return }
        for r in rows {
            let g = r.generation, total = max(1, r.totalSteps)
            answers[g.text] = (g.run.dataset, g.run.seed, Double(g.step) / Double(total))
        }
    }
}
