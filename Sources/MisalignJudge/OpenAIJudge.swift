import Foundation
import MisalignHTTP
import MisalignIO

/// Judge over an OpenAI-compatible chat-completions API (OpenAI, Azure OpenAI, vLLM,
/// llama.cpp server, Ollama's /v1).
///
/// Logprob mode (default) asks for one output token at temperature 0 with the 20 most likely
/// tokens, and scores the probability-weighted mean of the integer ones: a far steadier
/// signal than the single sampled token. When the server returns no logprobs, the text answer
/// is parsed instead.
public struct OpenAIJudge: Judge {
    public struct Config: Sendable, Equatable {
        public var model: String
        /// Up to and including `/v1` (`https://api.openai.com/v1`). For Azure, the deployment
        /// URL `https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT`.
        public var baseURL: String
        /// Set for Azure: adds `?api-version=` and sends the key as `api-key`.
        public var azureAPIVersion: String?
        /// Output tokens. 1 for logprob scoring; raise it for text parsing on servers whose
        /// tokenizer splits numbers into digits.
        public var maxTokens: Int
        public var logprobs: Bool
        public var topLogprobs: Int
        /// Below this numeric probability mass there is no score.
        public var minNumericMass: Double
        public var timeout: Double
        public var connectTimeout: Double
        /// How the server's tokenizer spells numbers (`NumberTokens`): `auto` reads digit by
        /// digit off OpenAI's and Azure's hosts when the first token is a lone digit.
        public var numbers: NumberTokens
        /// Digit scheme: first digits holding less than this share of the numeric mass are
        /// not continued (dropped, the rest renormalised).
        public var expandMin: Double
        /// Sent as the request's `seed` (OpenAI's best-effort determinism; the study used 0).
        public var seed: Int?

        public init(model: String, baseURL: String = "https://api.openai.com/v1", azureAPIVersion: String? = nil,
                    maxTokens: Int = 1, logprobs: Bool = true, topLogprobs: Int = 20, minNumericMass: Double = 0.25,
                    timeout: Double = 60, connectTimeout: Double = 10, numbers: NumberTokens = .auto, expandMin: Double = 0.01, seed: Int? = nil) {
            self.model = model; self.baseURL = baseURL; self.azureAPIVersion = azureAPIVersion
            self.maxTokens = maxTokens; self.logprobs = logprobs; self.topLogprobs = topLogprobs
            self.minNumericMass = minNumericMass; self.timeout = timeout; self.connectTimeout = connectTimeout
            self.numbers = numbers; self.expandMin = expandMin; self.seed = seed
        }
    }

    public let config: Config
    public let client: ReliableClient
    private let apiKey: String?
    /// `auto`: what the server said of its tokenizer (asked once).
    let numberProbe = NumberProbe()

    /// `apiKey` nil sends no authorization (local servers).
    public init(config: Config, apiKey: String?, client: ReliableClient) {
        self.config = config; self.apiKey = apiKey; self.client = client
    }

    public var id: String { "openai:\(config.model)" }

    /// The key, for the batch endpoints of the same API (never logged).
    var apiKeyForBatch: String? { apiKey }

    public var cacheIdentity: String {
        "openai|\(config.model)|\(JudgeIdentity.canonicalURL(config.baseURL))|\(config.azureAPIVersion ?? "")|max_tokens=\(config.maxTokens)|logprobs=\(config.logprobs)|top=\(config.topLogprobs)|min_mass=\(config.minNumericMass)|temperature=0"
            // Verdicts read digit by digit differ from one-token ones: never share a cache key.
            + (readsDigits ? "|numbers=digits|expand_min=\(config.expandMin)" : "") + (config.seed.map { "|seed=\($0)" } ?? "")
    }

    var url: String {
        let base = config.baseURL.hasSuffix("/") ? String(config.baseURL.dropLast()) : config.baseURL
        if let v = config.azureAPIVersion { return "\(base)/chat/completions?api-version=\(v)" }
        return "\(base)/chat/completions"
    }

    /// JSON content type and the key (Azure's `api-key`, else a bearer token), if any.
    var headers: [(String, String)] {
        var h = [("Content-Type", "application/json")]
        if let apiKey { h.append(config.azureAPIVersion == nil ? ("Authorization", "Bearer \(apiKey)") : ("api-key", apiKey)) }
        return h
    }

    /// The chat-completions request for `prompt`. With `start`, the judge's answer is
    /// continued from that text (vLLM's `continue_final_message`: the digit scheme).
    func request(prompt: String, start: String? = nil) -> HTTPRequest {
        var messages: [JSONValue] = [.object(JSONObject([("role", .string("user")), ("content", .string(prompt))]))]
        if let start { messages.append(.object(JSONObject([("role", .string("assistant")), ("content", .string(start))]))) }
        var body: [(String, JSONValue)] = [
            ("model", .string(config.model)),
            ("messages", .array(messages)),
            ("max_tokens", .int(Int64(config.maxTokens))),
            ("temperature", .int(0)),
        ]
        if let seed = config.seed { body.append(("seed", .int(Int64(seed)))) }
        if config.logprobs {
            body.append(("logprobs", .bool(true)))
            body.append(("top_logprobs", .int(Int64(config.topLogprobs))))
        }
        if start != nil {
            body.append(("add_generation_prompt", .bool(false)))
            body.append(("continue_final_message", .bool(true)))
        }
        return HTTPRequest(url: url, headers: headers, body: Data(JSONValue.object(JSONObject(body)).serialized().utf8),
                           connectTimeout: config.connectTimeout, timeout: config.timeout)
    }

    /// The parts of a chat-completions response a verdict needs.
    struct Parsed {
        var content: String
        var refusal: String?
        var top: [(token: String, logprob: Double)]?
        var inputTokens: Int
        var outputTokens: Int
        /// `length` when the answer was cut at `max_tokens`.
        var finishReason: String? = nil
    }

    static func parse(_ response: HTTPResponse, url: String) throws(HTTPError) -> Parsed {
        let v: JSONValue
        do { v = try JSONValue.parse(response.body) } catch {
            throw .malformedResponse(url: url, reason: "body is not JSON (\(error.description))")
        }
        guard let choice = v["choices"]?.arrayValue?.first, let message = choice["message"] else {
            throw .malformedResponse(url: url, reason: "no choices[0].message")
        }
        let content = message["content"]?.stringValue ?? ""
        let refusal = message["refusal"]?.stringValue
        var top: [(String, Double)]? = nil
        if let first = choice["logprobs"]?["content"]?.arrayValue?.first, let list = first["top_logprobs"]?.arrayValue {
            top = list.compactMap { e in
                guard let t = e["token"]?.stringValue, let lp = e["logprob"]?.doubleValue else { return nil }
                return (t, lp)
            }
        }
        return Parsed(content: content, refusal: refusal, top: top,
                      inputTokens: v["usage"]?["prompt_tokens"]?.intValue ?? 0,
                      outputTokens: v["usage"]?["completion_tokens"]?.intValue ?? 0,
                      finishReason: choice["finish_reason"]?.stringValue)
    }

    public func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
        let prompt = item.rubric.prompt(question: item.question, answer: item.answer)
        let req = request(prompt: prompt)
        let start = Date()
        let url = self.url
        let (p, attempts) = try await client.judged(req, estimatedTokens: prompt.utf8.count / 3 + config.maxTokens,
                                                     tokensUsed: { $0.inputTokens + $0.outputTokens },
                                                     decode: { (r) throws(HTTPError) -> Parsed in try Self.parse(r, url: url) })
        if p.refusal?.isEmpty != false, let top = p.top, !top.isEmpty, await continuesDigits(top) {
            return try await digitVerdict(first: p, top: top, item: item, prompt: prompt, attempts: attempts, start: start)
        }
        return verdict(from: p, item: item, attempts: attempts, latency: Date().timeIntervalSince(start))
    }

    /// The verdict a parsed chat completion gives (shared by live calls and batch results).
    func verdict(from p: Parsed, item: JudgeItem, attempts: Int, latency: Double) -> Verdict {
        let raw = redact(p.content, secrets: client.secrets)
        var v = Verdict(judge: id, trait: item.rubric.name, score: nil, status: .unparseable, raw: raw,
                        rubricHash: item.rubric.sha256, inputTokens: p.inputTokens, outputTokens: p.outputTokens,
                        latency: latency, attempts: attempts)
        if let r = p.refusal, !r.isEmpty {
            v.status = .refusal; v.detail = "model refusal: \(redact(String(r.prefix(200)), secrets: client.secrets))"
        } else if let top = p.top, !top.isEmpty {
            let agg = ScoreParsing.aggregate(top: top, minMass: config.minNumericMass)
            if let s = agg.score {
                v.score = s; v.status = .ok; v.detail = String(format: "numeric mass %.3f", agg.numericMass)
            } else if let best = top.max(by: { $0.logprob < $1.logprob }), let (status, detail) = item.rubric.escapeStatus(best.token) {
                v.status = status; v.detail = detail
            } else {
                v.status = .noNumericMass; v.detail = String(format: "numeric mass %.3f below %.2f", agg.numericMass, config.minNumericMass)
            }
        } else {
            let (score, status, detail) = ScoreParsing.parseText(p.content, rubric: item.rubric)
            v.score = score; v.status = status; v.detail = "no logprobs; " + detail
            // "8" cut at max_tokens may be the start of "85": not a score.
            let t = p.content.trimmingCharacters(in: .whitespacesAndNewlines)
            if readsDigits, score != nil, p.finishReason == "length", !t.isEmpty, t.last!.isNumber, (Int(t.suffix(3).filter(\.isNumber)) ?? 0) <= 10 {
                v.score = nil; v.status = .unparseable
                v.detail = "no logprobs; the answer \"\(t.prefix(8))\" was cut at max_tokens (\(config.maxTokens)) and may be the start of a longer number; raise max_tokens"
            }
        }
        return v
    }
}
