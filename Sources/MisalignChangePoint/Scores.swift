import Foundation
import MisalignIO

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

    /// Parses JSON Lines (`JSONLines`: a byte order mark and blank lines are skipped). Errors
    /// name `file` (when given), the line and the field, and say what was expected.
    /// `question_id` may be a string or an integer; `step` and `sample` are integers of 0 or
    /// more; `score` a finite number, within `0...scale` when `scale` is given.
    public static func parseJSONL(_ text: String, file: String? = nil, scale: Double? = nil) throws(ChangePointError) -> [ScoreRecord] {
        var out: [ScoreRecord] = []
        let prefix = file.map { "\($0) " } ?? ""
        for (lineNo, line) in JSONLines.lines(text) {
            let at = "\(prefix)line \(lineNo)"
            let t = line.trimmingCharacters(in: .whitespaces)
            let v: JSONValue
            do { v = try JSONValue.parse(String(t)) } catch {
                throw .invalidInput(field: at, reason: "not valid JSON: \(error)")
            }
            guard v.objectValue != nil else {
                throw .invalidInput(field: at, reason: "is a JSON \(v.typeName), expected an object {\"signal\", \"step\", \"question_id\", \"sample\", \"score\"}")
            }
            func need<T>(_ key: String, _ expected: String, _ f: (JSONValue) -> T?) throws(ChangePointError) -> T {
                guard let raw = v[key] else { throw .invalidInput(field: "\(at): \(key)", reason: "missing (expected \(expected))") }
                guard let x = f(raw) else { throw .invalidInput(field: "\(at): \(key)", reason: "is \(Self.describe(raw)), expected \(expected)") }
                return x
            }
            func optional<T>(_ key: String, _ expected: String, _ f: (JSONValue) -> T?) throws(ChangePointError) -> T? {
                guard let raw = v[key], raw != .null else { return nil }
                return try need(key, expected, f)
            }
            let signal: String = try need("signal", "a string such as \"evil\"") { $0.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
            let step: Int = try need("step", "an integer (optimizer step)") { $0.intValue }
            guard step >= 0 else { throw .invalidInput(field: "\(at): step", reason: "is \(step); steps are optimizer steps, 0 or more") }
            let q: String = try need("question_id", "a string or an integer") { $0.stringValue ?? $0.intValue.map(String.init) }
            let sample: Int = try need("sample", "an integer (answer index)") { $0.intValue }
            let score: Double = try need("score", "a number") { $0.doubleValue }
            guard score.isFinite else { throw .invalidInput(field: "\(at): score", reason: "is not finite") }
            if let scale, !(0...scale).contains(score) {
                throw .invalidInput(field: "\(at): score", reason: "is \(Self.number(score)), outside the judge scale 0-\(Self.number(scale)); fix the record, or set the scale's top with detection.scale")
            }
            out.append(ScoreRecord(signal: signal, step: step, questionID: q, sample: sample, score: score,
                                   dataset: try optional("dataset", "a string") { $0.stringValue },
                                   seed: try optional("seed", "an integer") { $0.intValue }))
        }
        if out.isEmpty { throw .invalidInput(field: file ?? "scores", reason: "no records (one JSON object per line)") }
        return out
    }

    /// `a string ("x")`, `a number (1.5)`, `null`...: what a field held, for an error.
    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return "a string (\"\(s.prefix(40))\")"
        case .int, .double: return "a number (\(v.serialized()))"
        case .bool(let b): return "a boolean (\(b))"
        case .null: return "null"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    static func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }
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
    package let counts: [Double]

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
