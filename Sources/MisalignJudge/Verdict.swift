import Foundation
import MisalignIO

/// What a judge made of one answer.
public enum VerdictStatus: String, Sendable, Equatable, CaseIterable {
    /// A score 0-100.
    case ok
    /// The judge declined, or answered the rubric's refusal escape word.
    case refusal
    /// The numeric answers carried less probability than the judge's threshold.
    case noNumericMass = "no_numeric_mass"
    /// The judge answered, but not with a number 0-100 (or with a non-refusal escape word).
    case unparseable
    /// The call failed (only in output rows; never cached, never returned by a judge).
    case error
}

/// One judge's verdict on one (rubric, question, answer).
public struct Verdict: Sendable, Equatable {
    /// Judge identity, e.g. `openai:gpt-4.1-mini`.
    public var judge: String
    public var trait: String
    /// 0-100 when `status == .ok`.
    public var score: Double?
    public var status: VerdictStatus
    /// Human-readable reason for a non-score (or the mass for logprob scores).
    public var detail: String
    /// The judge's answer text (for API judges the response body's content, key-scrubbed).
    public var raw: String
    /// SHA-256 of the rubric text used.
    public var rubricHash: String
    public var inputTokens: Int
    public var outputTokens: Int
    /// Seconds from first attempt to final answer.
    public var latency: Double
    public var attempts: Int
    /// Members' verdicts, for an ensemble.
    public var members: [Verdict]

    public init(judge: String, trait: String, score: Double?, status: VerdictStatus, detail: String = "", raw: String = "",
                rubricHash: String, inputTokens: Int = 0, outputTokens: Int = 0, latency: Double = 0, attempts: Int = 1,
                members: [Verdict] = []) {
        self.judge = judge; self.trait = trait; self.score = score; self.status = status; self.detail = detail
        self.raw = raw; self.rubricHash = rubricHash; self.inputTokens = inputTokens; self.outputTokens = outputTokens
        self.latency = latency; self.attempts = attempts; self.members = members
    }
}

/// What a judge is asked: score `answer` to `question` under `rubric`.
public struct JudgeItem: Sendable {
    public var rubric: Rubric
    public var question: String
    public var answer: String
    public init(rubric: Rubric, question: String, answer: String) {
        self.rubric = rubric; self.question = question; self.answer = answer
    }
}

/// A judge: scores one item. Implementations are safe to call concurrently.
public protocol Judge: Sendable {
    /// Identity used in verdicts and output rows (`openai:gpt-4.1-mini`).
    var id: String { get }
    /// Everything besides rubric, question and answer that changes the verdict (adapter,
    /// model, base URL, sampling parameters). Part of the cache key; never holds secrets.
    var cacheIdentity: String { get }
    /// Scores the item. Non-scores (refusal, no numeric mass, unparseable) are verdicts;
    /// failures that might go away on a later run are thrown.
    func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict
}

extension Verdict {
    /// JSON for caches and reports.
    public func json() -> JSONValue {
        var o: [(String, JSONValue)] = [
            ("judge", .string(judge)), ("trait", .string(trait)),
            ("score", score.map { .double($0) } ?? .null), ("status", .string(status.rawValue)),
            ("detail", .string(detail)), ("raw", .string(raw)), ("rubric_sha256", .string(rubricHash)),
            ("input_tokens", .int(Int64(inputTokens))), ("output_tokens", .int(Int64(outputTokens))),
            ("latency_s", .double(latency)), ("attempts", .int(Int64(attempts))),
        ]
        if !members.isEmpty { o.append(("members", .array(members.map { $0.json() }))) }
        return .object(JSONObject(o))
    }

    /// Inverse of `json()`.
    public init(json v: JSONValue) throws(JudgeError) {
        guard let judge = v["judge"]?.stringValue, let trait = v["trait"]?.stringValue,
              let statusText = v["status"]?.stringValue, let status = VerdictStatus(rawValue: statusText),
              let hash = v["rubric_sha256"]?.stringValue else {
            throw .invalidInput("verdict JSON lacks judge, trait, status or rubric_sha256")
        }
        self.init(judge: judge, trait: trait, score: v["score"]?.doubleValue, status: status,
                  detail: v["detail"]?.stringValue ?? "", raw: v["raw"]?.stringValue ?? "", rubricHash: hash,
                  inputTokens: v["input_tokens"]?.intValue ?? 0, outputTokens: v["output_tokens"]?.intValue ?? 0,
                  latency: v["latency_s"]?.doubleValue ?? 0, attempts: v["attempts"]?.intValue ?? 1,
                  members: try (v["members"]?.arrayValue ?? []).map { (m) throws(JudgeError) -> Verdict in try Verdict(json: m) })
    }
}
