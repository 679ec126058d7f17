import Foundation
import Synchronization
import MisalignHTTP
import MisalignIO
import MisalignTokenizer

/// An OpenAI-compatible server (vLLM, or anything speaking `/v1/completions`): its base URL,
/// the shared reliable client (retries with backoff, `Retry-After`, concurrency limit) and the
/// API key, which is sent only in the `Authorization` header and scrubbed from every error.
public struct RemoteEndpoint: Sendable {
    /// Up to and including `/v1`, e.g. `http://127.0.0.1:8000/v1`.
    public let baseURL: String
    public let client: ReliableClient
    private let apiKey: String?
    /// Seconds allowed per request (a long completion at low throughput takes minutes).
    public var timeout: Double
    public var connectTimeout: Double

    /// Whether `url` can name a server: it starts with http:// or https://.
    public static func isServerURL(_ url: String) -> Bool { url.hasPrefix("http://") || url.hasPrefix("https://") }

    /// `apiKeyVariable` names the environment variable holding the key (nil: no key, as for a
    /// local vLLM started without `--api-key`). The reliable client defaults to `maxInFlight`
    /// requests in flight and `maxAttempts` attempts per request.
    public init(baseURL: String, apiKeyVariable: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
                transport: any HTTPTransport = CurlTransport(), maxInFlight: Int = 32, maxAttempts: Int = 6,
                clock: any JudgeClock = SystemJudgeClock(), timeout: Double = 600, connectTimeout: Double = 10) throws(RemoteGenerationError) {
        guard Self.isServerURL(baseURL) else {
            throw .invalidRequest("server URL `\(baseURL)` must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)")
        }
        guard maxInFlight >= 1, maxAttempts >= 1 else { throw .invalidRequest("max in flight and max attempts must be at least 1") }
        var key: String? = nil
        if let variable = apiKeyVariable {
            guard let k = environment[variable], !k.isEmpty else { throw .missingAPIKey(variable: variable) }
            key = k
        }
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = key
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        client = ReliableClient(transport: transport, policy: RetryPolicy(maxAttempts: maxAttempts),
                                limits: RateLimits(maxInFlight: maxInFlight), clock: clock, secrets: key.map { [$0] } ?? [])
    }

    /// POSTs `body` to `path` (relative to the base URL) through the reliable client and
    /// decodes a 2xx answer with `decode`; failures become `RemoteGenerationError`s.
    func post<T>(_ path: String, _ body: JSONValue, model: String?,
                 decode: (HTTPResponse, String) throws(HTTPError) -> T) async throws(RemoteGenerationError) -> T {
        let url = "\(baseURL)/\(path)"
        var headers = [("Content-Type", "application/json")]
        if let apiKey { headers.append(("Authorization", "Bearer \(apiKey)")) }
        let request = HTTPRequest(url: url, headers: headers, body: Data(body.serialized().utf8),
                                  connectTimeout: connectTimeout, timeout: timeout)
        do throws(HTTPError) {
            return try await client.perform(request, estimatedTokens: 0, decode: { (r) throws(HTTPError) -> T in try decode(r, url) }).0
        } catch {
            throw RemoteGenerationError.from(client.scrub(error), model: model)
        }
    }
}

/// `Generator` over an OpenAI-compatible completions endpoint. Prompts go as token ids, so the
/// server applies no chat template of its own; each sample is one request whose seed is
/// derived from (run seed, prompt, sample index), so a sample is reproducible wherever the
/// server honours `seed` (vLLM does, per request).
///
/// Generated ids come back through vLLM's `return_tokens_as_token_ids`; from a server that
/// does not send them the text is re-tokenised with `tokenizer` (when given). Samples already
/// completed by an earlier call that failed part-way are not requested again.
public final class OpenAICompatibleGenerator: Generator, Sendable {
    public let endpoint: RemoteEndpoint
    /// The `model` field: the served base model name, or a loaded adapter's name.
    public let model: String
    public let tokenizer: (any Tokenizer)?
    /// Ask for generated token ids (vLLM's `return_tokens_as_token_ids`).
    public let requestTokenIDs: Bool
    /// Samples in flight at once from one `generate` call.
    public let maxInFlight: Int
    private let done = CompletionMemo()

    public init(endpoint: RemoteEndpoint, model: String, tokenizer: (any Tokenizer)? = nil, requestTokenIDs: Bool = true, maxInFlight: Int = 32) {
        self.endpoint = endpoint; self.model = model; self.tokenizer = tokenizer
        self.requestTokenIDs = requestTokenIDs; self.maxInFlight = max(1, maxInFlight)
    }

    /// `onToken` is called once per finished sample with its whole text (the server is not
    /// asked to stream).
    public func generate(_ requests: [GenerationRequest], onToken: (@Sendable (TokenEvent) -> Void)?) async throws -> [Completion] {
        for (i, r) in requests.enumerated() {
            do { try r.sampling.validate() } catch { throw RemoteGenerationError.invalidRequest("request \(i): \(error)") }
            guard !r.prompt.isEmpty else { throw RemoteGenerationError.invalidRequest("request \(i): the prompt is empty") }
            guard r.samples >= 1, r.maxNewTokens >= 1 else {
                throw RemoteGenerationError.invalidRequest("request \(i): samples and max new tokens must be at least 1")
            }
        }
        let jobs = requests.indices.flatMap { i in (0..<requests[i].samples).map { (i, $0) } }
        var results = [Completion?](repeating: nil, count: jobs.count)
        var firstError: RemoteGenerationError?
        let model = self.model, endpoint = self.endpoint, tokenIDs = requestTokenIDs, tokenizer = self.tokenizer, memo = done
        await withTaskGroup(of: (Int, Result<Completion, RemoteGenerationError>).self) { group in
            var next = 0
            func launch() {
                guard next < jobs.count else { return }
                let k = next; next += 1
                let (i, s) = jobs[k]
                let request = requests[i]
                group.addTask {
                    let body = RemoteWire.body(model: model, request: request, sample: s, tokenIDs: tokenIDs)
                    let key = body.serialized()
                    if var c = memo.get(key) { c.request = i; return (k, .success(c)) }
                    do throws(RemoteGenerationError) {
                        let choice = try await endpoint.post("completions", body, model: model) { (r, url) throws(HTTPError) in
                            try RemoteWire.parse(r.body, url: url)
                        }
                        let ids = choice.tokens ?? tokenizer.map { $0.encode(choice.text).map { Int32($0) } } ?? []
                        let c = Completion(request: i, sample: s, tokens: ids, text: choice.text, finishReason: choice.finish,
                                           promptTokens: choice.promptTokens > 0 ? choice.promptTokens : request.prompt.count)
                        memo.put(key, c)
                        return (k, .success(c))
                    } catch {
                        return (k, .failure(error))
                    }
                }
            }
            for _ in 0..<min(maxInFlight, jobs.count) { launch() }
            // Every launched sample is let finish, even after a failure, so that a retry of the
            // call resends only what failed.
            for await (k, result) in group {
                switch result {
                case .success(let c):
                    results[k] = c
                    if let onToken { onToken(TokenEvent(request: c.request, sample: c.sample, token: c.tokens.last ?? -1, textDelta: c.text)) }
                case .failure(let e):
                    if firstError == nil { firstError = e }
                }
                if firstError == nil { launch() }
            }
        }
        if let firstError { throw firstError }
        return results.map { $0! }
    }

    /// Requests made so far (every attempt counts).
    public var requestsSent: Int { endpoint.client.requestsSent }
}

/// Finished samples by request body, so a retried call skips them.
final class CompletionMemo: Sendable {
    private let done = Mutex<[String: Completion]>([:])
    func get(_ key: String) -> Completion? { done.withLock { $0[key] } }
    func put(_ key: String, _ c: Completion) { done.withLock { $0[key] = c } }
}
