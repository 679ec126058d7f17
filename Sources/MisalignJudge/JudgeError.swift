import Foundation
import MisalignHTTP

/// Everything that can go wrong while judging. Descriptions name the URL, status, file or
/// field and what to do; they never contain API keys (request headers are never echoed, and
/// server bodies are scrubbed of the key before they reach an error).
public enum JudgeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No TCP/TLS connection could be made (refused, DNS failure, TLS handshake...).
    case connection(url: String, reason: String)
    /// The connect or total timeout passed.
    case timeout(url: String, seconds: Double)
    /// The calling task was cancelled; the transfer was aborted.
    case cancelled(url: String)
    /// The body ended before its announced length, or the connection dropped mid-response.
    case truncated(url: String, reason: String)
    /// The response body was larger than the transport's cap.
    case responseTooLarge(url: String, limit: Int)
    /// A non-success HTTP status; `body` is a short, key-scrubbed excerpt.
    case http(url: String, status: Int, body: String)
    /// The body was not the JSON shape the API documents.
    case malformedResponse(url: String, reason: String)
    /// 401/403 too many times in a row: stop instead of burning through the sweep.
    case circuitOpen(url: String, failures: Int)
    /// An API key environment variable is unset or empty.
    case missingAPIKey(variable: String)
    /// A judge spec, rubric file, answers file or option is invalid.
    case invalidInput(String)
    /// The cache database failed.
    case cache(path: String, reason: String)
    /// The local model judge failed (loading, tokenizing, forward).
    case localModel(reason: String)
    /// The server (HTTP `status`, usually 429 or 503) asked to wait `seconds` before another
    /// request (`Retry-After`), longer than the `cap` this run waits.
    case retryAfterTooLong(url: String, status: Int, seconds: Double, cap: Double)
    /// The judge's first token was a lone digit (its server splits numbers into digits), and
    /// the continuation that reads the rest of the number failed for good.
    case numbersSplit(url: String, model: String, reason: String)
    /// Retries ran out; `last` is the final failure.
    indirect case retriesExhausted(attempts: Int, last: JudgeError)

    /// Whether another attempt may succeed (connection trouble, timeouts, truncated or
    /// malformed bodies, 408, 409, 429 and 5xx).
    public var isRetryable: Bool { transport?.isRetryable ?? false }

    /// 401 or 403: the key is wrong or lacks access.
    public var isAuthFailure: Bool { transport?.isAuthFailure ?? false }

    public var description: String {
        if let transport { return transport.description }
        switch self {
        case .missingAPIKey(let v): return "environment variable \(v) is not set; export it with the API key"
        case .invalidInput(let m): return m
        case .cache(let path, let reason): return "verdict cache \(path): \(reason)"
        case .localModel(let reason): return "local judge: \(reason)"
        case .numbersSplit(let url, let model, let reason):
            return "judge \(model) at \(url) answered a lone first digit (its tokenizer splits numbers into digits, so \"8\" may be the start of \"85\"), "
                + "and the request continuing its answer to read the whole number failed (\(reason)); serve the judge with vLLM "
                + "(it accepts continue_final_message), use a local: judge, or, if this server's tokenizer has one token per number 0-100, set judges.numbers: whole"
        case .retriesExhausted(let n, let last): return "gave up after \(n) attempts: \(last)"
        default: return ""  // the transport cases, described above
        }
    }
}

extension JudgeError {
    /// The judge error for a failure of the HTTP client, case for case.
    public init(_ e: HTTPError) {
        switch e {
        case .connection(let url, let reason): self = .connection(url: url, reason: reason)
        case .timeout(let url, let s): self = .timeout(url: url, seconds: s)
        case .cancelled(let url): self = .cancelled(url: url)
        case .truncated(let url, let reason): self = .truncated(url: url, reason: reason)
        case .responseTooLarge(let url, let limit): self = .responseTooLarge(url: url, limit: limit)
        case .http(let url, let status, let body): self = .http(url: url, status: status, body: body)
        case .malformedResponse(let url, let reason): self = .malformedResponse(url: url, reason: reason)
        case .rejected(let m): self = .invalidInput(m)
        case .circuitOpen(let url, let n): self = .circuitOpen(url: url, failures: n)
        case .retryAfterTooLong(let url, let status, let s, let cap): self = .retryAfterTooLong(url: url, status: status, seconds: s, cap: cap)
        case .retriesExhausted(let n, let last): self = .retriesExhausted(attempts: n, last: JudgeError(last))
        }
    }

    /// The HTTP failure this error carries, for the cases the two share.
    public var transport: HTTPError? {
        switch self {
        case .connection(let url, let reason): return .connection(url: url, reason: reason)
        case .timeout(let url, let s): return .timeout(url: url, seconds: s)
        case .cancelled(let url): return .cancelled(url: url)
        case .truncated(let url, let reason): return .truncated(url: url, reason: reason)
        case .responseTooLarge(let url, let limit): return .responseTooLarge(url: url, limit: limit)
        case .http(let url, let status, let body): return .http(url: url, status: status, body: body)
        case .malformedResponse(let url, let reason): return .malformedResponse(url: url, reason: reason)
        case .circuitOpen(let url, let n): return .circuitOpen(url: url, failures: n)
        case .retryAfterTooLong(let url, let status, let s, let cap): return .retryAfterTooLong(url: url, status: status, seconds: s, cap: cap)
        default: return nil
        }
    }
}

extension ReliableClient {
    /// `perform`, with the client's failures as judge errors.
    func judged<T>(_ request: HTTPRequest, estimatedTokens: Int, tokensUsed: (T) -> Int? = { _ in nil },
                   decode: (HTTPResponse) throws(HTTPError) -> T) async throws(JudgeError) -> (T, attempts: Int) {
        do { return try await perform(request, estimatedTokens: estimatedTokens, tokensUsed: tokensUsed, decode: decode) }
        catch { throw JudgeError(error) }
    }
}

extension JudgeError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
