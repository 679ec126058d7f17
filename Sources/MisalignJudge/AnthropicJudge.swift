import Foundation
import MisalignHTTP
import MisalignIO

/// Judge over Anthropic's Messages API. It returns no logprobs, so the integer answer is
/// parsed from the text; `samples > 1` asks several times at temperature 1 and averages the
/// scores that parsed (a cheap stand-in for the expectation logprobs would give).
public struct AnthropicJudge: Judge {
    public struct Config: Sendable, Equatable {
        public var model: String
        /// Up to and including `/v1`.
        public var baseURL: String
        public var maxTokens: Int
        public var samples: Int
        public var timeout: Double
        public var connectTimeout: Double
        public init(model: String, baseURL: String = "https://api.anthropic.com/v1", maxTokens: Int = 5, samples: Int = 1,
                    timeout: Double = 60, connectTimeout: Double = 10) {
            self.model = model; self.baseURL = baseURL; self.maxTokens = maxTokens; self.samples = max(1, samples)
            self.timeout = timeout; self.connectTimeout = connectTimeout
        }
    }

    public let config: Config
    public let client: ReliableClient
    private let apiKey: String?

    public init(config: Config, apiKey: String?, client: ReliableClient) {
        self.config = config; self.apiKey = apiKey; self.client = client
    }

    public var id: String { "anthropic:\(config.model)" }

    public var cacheIdentity: String {
        "anthropic|\(config.model)|\(JudgeIdentity.canonicalURL(config.baseURL))|max_tokens=\(config.maxTokens)|samples=\(config.samples)|temperature=\(config.samples > 1 ? 1 : 0)"
    }

    var url: String {
        (config.baseURL.hasSuffix("/") ? String(config.baseURL.dropLast()) : config.baseURL) + "/messages"
    }

    func request(prompt: String) -> HTTPRequest {
        let body = JSONValue.object(JSONObject([
            ("model", .string(config.model)),
            ("max_tokens", .int(Int64(config.maxTokens))),
            ("temperature", .int(config.samples > 1 ? 1 : 0)),
            ("messages", .array([.object(JSONObject([("role", .string("user")), ("content", .string(prompt))]))])),
        ]))
        var headers = [("Content-Type", "application/json"), ("anthropic-version", "2023-06-01")]
        if let apiKey { headers.append(("x-api-key", apiKey)) }
        return HTTPRequest(url: url, headers: headers, body: Data(body.serialized().utf8),
                           connectTimeout: config.connectTimeout, timeout: config.timeout)
    }

    struct Parsed { var text: String; var stopReason: String?; var inputTokens: Int; var outputTokens: Int }

    static func parse(_ response: HTTPResponse, url: String) throws(HTTPError) -> Parsed {
        let v: JSONValue
        do { v = try JSONValue.parse(response.body) } catch {
            throw .malformedResponse(url: url, reason: "body is not JSON (\(error.description))")
        }
        guard let blocks = v["content"]?.arrayValue else { throw .malformedResponse(url: url, reason: "no content array") }
        let text = blocks.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined()
        return Parsed(text: text, stopReason: v["stop_reason"]?.stringValue,
                      inputTokens: v["usage"]?["input_tokens"]?.intValue ?? 0,
                      outputTokens: v["usage"]?["output_tokens"]?.intValue ?? 0)
    }

    public func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
        let prompt = item.rubric.prompt(question: item.question, answer: item.answer)
        let req = request(prompt: prompt)
        let start = Date()
        let url = self.url
        var samples: [(score: Double?, status: VerdictStatus, detail: String, raw: String)] = []
        var inTok = 0, outTok = 0, attempts = 0
        for _ in 0..<config.samples {
            let (p, n) = try await client.judged(req, estimatedTokens: prompt.utf8.count / 3 + config.maxTokens,
                                                  tokensUsed: { $0.inputTokens + $0.outputTokens },
                                                  decode: { (r) throws(HTTPError) -> Parsed in try Self.parse(r, url: url) })
            inTok += p.inputTokens; outTok += p.outputTokens; attempts += n
            let raw = redact(p.text, secrets: client.secrets)
            if p.stopReason == "refusal" {
                samples.append((nil, .refusal, "stop_reason refusal", raw))
            } else {
                let (s, st, d) = ScoreParsing.parseText(p.text, rubric: item.rubric)
                samples.append((s, st, d, raw))
            }
        }
        let scores = samples.compactMap(\.score)
        var v = Verdict(judge: id, trait: item.rubric.name, score: nil, status: samples[0].status, detail: samples[0].detail,
                        raw: samples.map(\.raw).joined(separator: "\n"), rubricHash: item.rubric.sha256,
                        inputTokens: inTok, outputTokens: outTok, latency: Date().timeIntervalSince(start), attempts: attempts)
        if !scores.isEmpty {
            v.score = scores.reduce(0, +) / Double(scores.count)
            v.status = .ok
            v.detail = samples.count == 1 ? samples[0].detail : "mean of \(scores.count) of \(samples.count) samples"
        }
        return v
    }
}
