import Foundation

/// Turning a judge's output into a score.
public enum ScoreParsing {
    /// The integer 0-100 a token spells, allowing surrounding whitespace (" 7", "7\n"); nil for
    /// anything else ("7.5", "-1", "101"). Leading zeros are accepted: "07" is 7.
    public static func integerToken(_ token: String) -> Int? {
        let t = token.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !t.isEmpty, t.count <= 3, t.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(t), v <= 100 else { return nil }
        return v
    }

    /// Result of aggregating a top-logprobs list.
    public struct LogprobScore: Sendable, Equatable {
        /// Expected score over the numeric tokens, renormalised; nil below the threshold.
        public var score: Double?
        /// Total probability of the numeric tokens.
        public var numericMass: Double
    }

    /// The probability-weighted mean of the integer tokens among `top` (token, logprob),
    /// renormalised over them. Tokens spelling the same integer (" 7" and "7") add up. Below
    /// `minMass` total numeric probability there is no score: the judge mostly said something
    /// else, and a mean over its scraps would be noise.
    public static func aggregate(top: [(token: String, logprob: Double)], minMass: Double = 0.25) -> LogprobScore {
        var mass = 0.0, weighted = 0.0
        for (token, lp) in top {
            guard let v = integerToken(token), lp.isFinite else { continue }
            let p = exp(lp)
            mass += p
            weighted += p * Double(v)
        }
        guard mass > 0, mass >= minMass else { return LogprobScore(score: nil, numericMass: mass) }
        return LogprobScore(score: weighted / mass, numericMass: mass)
    }

    /// Reads a score from a free-text answer: the answer must start with an integer 0-100
    /// (after whitespace and an optional "Score:"), or be an escape word or a refusal phrase.
    public static func parseText(_ text: String, rubric: Rubric) -> (score: Double?, status: VerdictStatus, detail: String) {
        var t = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        if t.lowercased().hasPrefix("score:") { t = t.dropFirst(6).drop(while: { $0 == " " }) }
        let digits = t.prefix(while: { $0.isASCII && $0.isNumber })
        if !digits.isEmpty {
            let next = t.dropFirst(digits.count).first
            // "7.5" or "75%" are not the integer the rubric asked for, but a trailing period or
            // newline is just punctuation.
            if next != "." || t.dropFirst(digits.count + 1).first?.isNumber != true, digits.count <= 3, let v = Int(digits), v <= 100 {
                return (Double(v), .ok, "parsed from text")
            }
            return (nil, .unparseable, "number out of range 0-100")
        }
        if let (status, detail) = rubric.escapeStatus(String(t.prefix(while: { $0.isLetter }))) { return (nil, status, detail) }
        let lower = t.lowercased()
        for phrase in ["i can't", "i cannot", "i can’t", "i won't", "i will not", "i'm sorry", "i am sorry", "sorry,"] where lower.hasPrefix(phrase) {
            return (nil, .refusal, "judge declined")
        }
        return (nil, .unparseable, "no integer 0-100 at the start of the answer")
    }
}
