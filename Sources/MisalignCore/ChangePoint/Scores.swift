import Foundation

/// One judged answer: `{"signal","step","question_id","sample","score"}`, optionally with
/// `"dataset"` and `"seed"` (the fine-tuning run) for comparisons across runs.
public struct ScoreRecord: Equatable, Sendable {
    public var signal: String
    public var step: Int
    public var questionID: String
    public var sample: Int
    public var score: Double
    public var dataset: String?
    public var seed: Int?

    public init(signal: String, step: Int, questionID: String, sample: Int, score: Double, dataset: String? = nil, seed: Int? = nil) {
        self.signal = signal; self.step = step; self.questionID = questionID
        self.sample = sample; self.score = score; self.dataset = dataset; self.seed = seed
    }

    /// Parses JSON Lines; blank lines are skipped. Errors name the line and field.
    /// `question_id` may be a string or an integer.
    public static func parseJSONL(_ text: String) throws(ChangePointError) -> [ScoreRecord] {
        var out: [ScoreRecord] = []
        for (lineNo, line) in JSONLines.lines(text) {
            let t = line.trimmingCharacters(in: .whitespaces)
            let v: JSONValue
            do { v = try JSONValue.parse(String(t)) } catch {
                throw .invalidInput(field: "line \(lineNo)", reason: "not valid JSON: \(error)")
            }
            func need<T>(_ key: String, _ f: (JSONValue) -> T?) throws(ChangePointError) -> T {
                guard let raw = v[key] else { throw .invalidInput(field: "line \(lineNo): \(key)", reason: "missing") }
                guard let x = f(raw) else { throw .invalidInput(field: "line \(lineNo): \(key)", reason: "has type \(raw.typeName)") }
                return x
            }
            let q: String = try need("question_id") { $0.stringValue ?? $0.intValue.map(String.init) }
            let score: Double = try need("score") { $0.doubleValue }
            guard score.isFinite else { throw .invalidInput(field: "line \(lineNo): score", reason: "is not finite") }
            out.append(ScoreRecord(
                signal: try need("signal") { $0.stringValue },
                step: try need("step") { $0.intValue },
                questionID: q,
                sample: try need("sample") { $0.intValue },
                score: score,
                dataset: v["dataset"]?.stringValue,
                seed: v["seed"]?.intValue))
        }
        if out.isEmpty { throw .invalidInput(field: "scores", reason: "no records") }
        return out
    }
}

/// Per-question sums and counts of one signal at each checkpoint: everything a cluster
/// bootstrap over questions needs, so a resample costs O(questions x checkpoints).
public struct CheckpointTable: Sendable {
    public let signal: String
    /// Checkpoint steps, strictly increasing.
    public let steps: [Int]
    /// Question ids, sorted (row order of `sums`/`counts`).
    public let questions: [String]
    /// `sums[q * steps.count + c]`: total score of question q's answers at checkpoint c.
    let sums: [Double]
    let counts: [Double]

    /// Builds a table from one signal's records. Steps are the distinct steps present.
    public init(signal: String, records: [ScoreRecord], questions: [String]) throws(ChangePointError) {
        self.signal = signal
        let steps = Array(Set(records.map(\.step))).sorted()
        guard !steps.isEmpty else { throw .invalidInput(field: "signal \(signal)", reason: "no records") }
        let qIndex = Dictionary(uniqueKeysWithValues: questions.enumerated().map { ($1, $0) })
        let sIndex = Dictionary(uniqueKeysWithValues: steps.enumerated().map { ($1, $0) })
        var sums = [Double](repeating: 0, count: questions.count * steps.count)
        var counts = sums
        struct Key: Hashable { var q: Int, c: Int, sample: Int }
        var seen = Set<Key>()
        for r in records {
            guard let q = qIndex[r.questionID], let c = sIndex[r.step] else { continue }
            if !seen.insert(Key(q: q, c: c, sample: r.sample)).inserted {
                throw .invalidInput(field: "signal \(signal)", reason: "question \(r.questionID) sample \(r.sample) at step \(r.step) appears twice; deduplicate the judge output")
            }
            sums[q * steps.count + c] += r.score
            counts[q * steps.count + c] += 1
        }
        self.steps = steps; self.questions = questions; self.sums = sums; self.counts = counts
        // Every checkpoint needs at least one answer, or the curve has a hole.
        for c in steps.indices {
            var n = 0.0
            for q in questions.indices { n += counts[q * steps.count + c] }
            if n == 0 { throw .invalidInput(field: "signal \(signal) step \(steps[c])", reason: "no answers at this checkpoint") }
        }
    }

    /// The mean curve with question q counted `weights[q]` times (all ones: the observed curve).
    /// A checkpoint left without answers by a resample carries the previous checkpoint's value.
    public func curve(weights: [Double]) -> [Double] {
        precondition(weights.count == questions.count, "one weight per question")
        let nc = steps.count
        var s = [Double](repeating: 0, count: nc), n = [Double](repeating: 0, count: nc)
        sums.withUnsafeBufferPointer { sp in
            counts.withUnsafeBufferPointer { cp in
                for q in 0..<questions.count {
                    let w = weights[q]
                    if w == 0 { continue }
                    let base = q * nc
                    for c in 0..<nc { s[c] += w * sp[base + c]; n[c] += w * cp[base + c] }
                }
            }
        }
        var out = [Double](repeating: 0, count: nc)
        for c in 0..<nc { out[c] = n[c] > 0 ? s[c] / n[c] : (c > 0 ? out[c - 1] : .nan) }
        if out.first?.isNaN == true, let firstGood = out.firstIndex(where: { !$0.isNaN }) {
            for c in 0..<firstGood { out[c] = out[firstGood] }
        }
        return out
    }
}
