import Foundation
import Synchronization
import MisalignHTTP
import MisalignIO

/// How an `openai:` judge's server spells the numbers 0-100 in tokens.
///
/// OpenAI's tokenizers have one token for each of 0-100, so one output token's top logprobs
/// hold the whole distribution of scores. Qwen's (and most open models') split numbers into
/// digits: the first token of "85" is "8", and a one-token score would read 8. Such a judge
/// is scored digit by digit (`DigitScoring`).
public enum NumberTokens: String, Sendable, CaseIterable {
    /// `whole` for OpenAI's and Azure's hosts; elsewhere the digit scheme whenever the first
    /// token's numeric candidates are all single digits (where a first digit may be the start
    /// of a longer number). A top list holding a multi-digit number token shows a tokenizer
    /// with whole numbers, and is scored as `whole`.
    case auto
    /// One token per number: the first token's distribution is the score's.
    case whole
    /// Numbers split into digits: every numeric first token that could start a longer number
    /// (1-10) is continued.
    case digits
}

/// The full score distribution of a judge whose tokenizer splits numbers into digits.
///
/// The first token's top logprobs give each first digit's probability. For each first digit
/// that could begin a longer number (1 to 10: "1" may become "10" or "100"), the judge is asked
/// again with that digit as the start of its answer (vLLM's `continue_final_message`), and the
/// next token's top logprobs split the digit's probability between "the number ends here"
/// (any listed token that is not a bare digit) and each longer number. Each list is
/// renormalised over its listed tokens, as the one-token scheme renormalises over numeric
/// tokens. The score is the expectation over the resulting numbers 0-100.
///
/// Cost: one call, plus one per first digit kept (at most 11; a confident judge needs 1-3).
/// Prefixes holding less than `expandMin` of the numeric mass are dropped and the rest
/// renormalised (the verdict's detail reports the share dropped).
enum DigitScoring {
    /// A number being read: its token text so far (sent back as the answer's start), its
    /// value, and its probability.
    struct Prefix {
        var text: String
        var value: Int
        var probability: Double
    }

    /// Whether `auto` should continue this first-token list: its numeric tokens (there is at
    /// least one) are all single digits.
    static func ambiguous(_ top: [(token: String, logprob: Double)]) -> Bool {
        var any = false
        for (t, lp) in top where lp.isFinite {
            guard let v = ScoreParsing.integerToken(t) else { continue }
            any = true
            if v > 9 || t.trimmingCharacters(in: .whitespacesAndNewlines).count != 1 { return false }
        }
        return any
    }

    /// The numeric first tokens as prefixes; tokens spelling the same number add up and the
    /// likeliest spelling is the one continued.
    static func firstPrefixes(_ top: [(token: String, logprob: Double)]) -> [Prefix] {
        var byValue: [Int: (text: String, best: Double, total: Double)] = [:]
        for (t, lp) in top where lp.isFinite {
            guard let v = ScoreParsing.integerToken(t) else { continue }
            let p = exp(lp)
            if let e = byValue[v] {
                byValue[v] = (p > e.best ? t : e.text, max(p, e.best), e.total + p)
            } else {
                byValue[v] = (t, p, p)
            }
        }
        return byValue.keys.sorted().map { Prefix(text: byValue[$0]!.text, value: $0, probability: byValue[$0]!.total) }
    }

    /// Whether a number read so far can still grow into another number 0-100 ("0" is taken as
    /// complete: a judge does not write 05).
    static func extendable(_ value: Int) -> Bool { value >= 1 && value <= 10 }

    /// Splits `prefix` by the next token's top list: the probability that the number ends
    /// (kept at `prefix.value`) and the longer prefixes. A next digit that would pass 100 is
    /// not a score: its share is dropped (returned as `invalid`).
    static func split(_ prefix: Prefix, next top: [(token: String, logprob: Double)]) -> (end: Double, longer: [Prefix], invalid: Double) {
        var listed = 0.0
        for (_, lp) in top where lp.isFinite { listed += exp(lp) }
        guard listed > 0 else { return (prefix.probability, [], 0) }
        var end = 0.0, invalid = 0.0
        var longer: [Int: Prefix] = [:]
        for (t, lp) in top where lp.isFinite {
            let p = prefix.probability * exp(lp) / listed
            // Only a bare digit run continues the number: " 5" or "5." after "8" starts
            // something else.
            guard !t.isEmpty, t.count <= 2, t.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(String(prefix.value) + t) else {
                end += p
                continue
            }
            if v > 100 { invalid += p; continue }
            if var e = longer[v] { e.probability += p; longer[v] = e } else { longer[v] = Prefix(text: prefix.text + t, value: v, probability: p) }
        }
        return (end, longer.keys.sorted().map { longer[$0]! }, invalid)
    }
}

/// What `auto` learned of one server's tokenizer; shared by the copies of one judge.
final class NumberProbe: Sendable {
    enum State: Sendable { case unknown, whole, digits, unavailable }
    private let state = Mutex(State.unknown)
    var value: State {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

extension OpenAIJudge {
    /// `auto`, off OpenAI's hosts, on a lone first digit: whether the server splits numbers.
    /// Asked once of vLLM's `POST /tokenize` (at the server's root, beside `/v1`): "85" in two
    /// tokens means digits. A server without that endpoint is read digit by digit, which is
    /// right for both kinds (a whole-number server's next token after "8" ends the number),
    /// and fails clearly where the server cannot continue an answer.
    func serverSplitsNumbers() async -> Bool {
        switch numberProbe.value {
        case .whole: return false
        case .digits, .unavailable: return true
        case .unknown: break
        }
        var root = config.baseURL
        while root.hasSuffix("/") { root.removeLast() }
        if root.hasSuffix("/v1") { root.removeLast(3) }
        let body = JSONValue.object(JSONObject([("model", .string(config.model)), ("prompt", .string("85")), ("add_special_tokens", .bool(false))]))
        let url = root + "/tokenize"
        let req = HTTPRequest(url: url, headers: headers, body: Data(body.serialized().utf8), connectTimeout: config.connectTimeout, timeout: config.timeout)
        do {
            let (count, _) = try await client.judged(req, estimatedTokens: 1) { (r) throws(HTTPError) -> Int in
                guard let v = try? JSONValue.parse(r.body), let n = v["count"]?.intValue ?? v["tokens"]?.arrayValue?.count, n > 0 else {
                    throw .rejected("\(url): not a token count")
                }
                return n
            }
            numberProbe.value = count >= 2 ? .digits : .whole
        } catch {
            numberProbe.value = .unavailable
        }
        return numberProbe.value != .whole
    }

    /// Whether this first-token list is read digit by digit: it could start a longer number,
    /// and the server splits numbers (`digits`, or `auto` once the server has said so).
    func continuesDigits(_ top: [(token: String, logprob: Double)]) async -> Bool {
        guard needsDigits(top) else { return false }
        return config.numbers == .digits ? true : await serverSplitsNumbers()
    }

    /// Whether this judge reads numbers digit by digit when its first token is ambiguous.
    var readsDigits: Bool {
        switch config.numbers {
        case .whole: return false
        case .digits: return true
        case .auto: return !Self.hasWholeNumberTokens(baseURL: config.baseURL, azure: config.azureAPIVersion != nil)
        }
    }

    /// OpenAI's and Azure OpenAI's hosts serve models whose tokenizers hold 0-100 as tokens.
    static func hasWholeNumberTokens(baseURL: String, azure: Bool) -> Bool {
        if azure { return true }
        guard let host = URLComponents(string: JudgeIdentity.canonicalURL(baseURL))?.host else { return false }
        return host == "api.openai.com" || host.hasSuffix(".openai.azure.com")
    }

    /// Whether a first-token list is to be continued digit by digit.
    func needsDigits(_ top: [(token: String, logprob: Double)]) -> Bool {
        guard readsDigits else { return false }
        if config.numbers == .digits { return DigitScoring.firstPrefixes(top).contains { DigitScoring.extendable($0.value) } }
        return DigitScoring.ambiguous(top) && DigitScoring.firstPrefixes(top).contains { DigitScoring.extendable($0.value) }
    }

    /// Scores a first-token list digit by digit; `first` is the first call's parse, whose
    /// usage is added to the verdict's.
    func digitVerdict(first: Parsed, top: [(token: String, logprob: Double)], item: JudgeItem, prompt: String,
                      attempts firstAttempts: Int, start: Date) async throws(JudgeError) -> Verdict {
        let numeric = DigitScoring.firstPrefixes(top)
        let mass = numeric.reduce(0) { $0 + $1.probability }
        var v = Verdict(judge: id, trait: item.rubric.name, score: nil, status: .noNumericMass, raw: redact(first.content, secrets: client.secrets),
                        rubricHash: item.rubric.sha256, inputTokens: first.inputTokens, outputTokens: first.outputTokens,
                        latency: 0, attempts: firstAttempts)
        guard mass > 0, mass >= config.minNumericMass else {
            v.detail = String(format: "numeric mass %.3f below %.2f", mass, config.minNumericMass)
            v.latency = Date().timeIntervalSince(start)
            return v
        }
        var leaves: [(value: Int, probability: Double)] = []
        var dropped = 0.0, calls = 0
        var queue = numeric
        let url = self.url
        while !queue.isEmpty {
            let p = queue.removeFirst()
            guard DigitScoring.extendable(p.value) else { leaves.append((p.value, p.probability)); continue }
            if p.probability / mass < config.expandMin { dropped += p.probability; continue }
            let req = request(prompt: prompt, start: p.text)
            let next: Parsed
            let attempts: Int
            do {
                (next, attempts) = try await client.judged(req, estimatedTokens: prompt.utf8.count / 3 + config.maxTokens,
                                                             tokensUsed: { $0.inputTokens + $0.outputTokens },
                                                             decode: { (r) throws(HTTPError) -> Parsed in try Self.parse(r, url: url) })
            } catch {
                if case .http(_, let status, let body) = error, (400..<500).contains(status), ![401, 403, 408, 409, 429].contains(status) {
                    throw .numbersSplit(url: url, model: config.model, reason: "HTTP \(status): \(body.prefix(200))")
                }
                throw error
            }
            calls += 1
            v.attempts += attempts; v.inputTokens += next.inputTokens; v.outputTokens += next.outputTokens
            guard let nextTop = next.top, !nextTop.isEmpty else {
                throw .numbersSplit(url: url, model: config.model, reason: "the continuation came back without logprobs")
            }
            let s = DigitScoring.split(p, next: nextTop)
            if s.end > 0 { leaves.append((p.value, s.end)) }
            dropped += s.invalid
            queue += s.longer
        }
        let kept = leaves.reduce(0) { $0 + $1.probability }
        v.latency = Date().timeIntervalSince(start)
        guard kept > 0 else {
            v.detail = "digits: no complete number 0-100 after \(calls) continuations"
            v.status = .unparseable
            return v
        }
        v.score = leaves.reduce(0) { $0 + Double($1.value) * $1.probability } / kept
        v.status = .ok
        v.detail = String(format: "digits: numeric mass %.3f, %d continuations, %.1f%% of it dropped", mass, calls, 100 * dropped / mass)
        return v
    }
}
