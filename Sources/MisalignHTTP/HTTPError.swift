import Foundation

/// What can go wrong talking to an HTTP API: the transport's failures and the retrying
/// client's verdicts. Descriptions name the URL and status and say what to do; they never
/// contain API keys (request headers are never echoed, and server bodies are scrubbed of the
/// key before they reach an error). The judge and generation layers map these to their own
/// errors (`JudgeError(_:)`, `RemoteGenerationError`).
public enum HTTPError: Error, Equatable, Sendable, CustomStringConvertible {
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
    /// The body was not the JSON shape the API documents (retried: usually transient).
    case malformedResponse(url: String, reason: String)
    /// A well-formed answer the caller's decoder will not accept (not retried).
    case rejected(String)
    /// 401/403 too many times in a row: stop instead of burning through the sweep.
    case circuitOpen(url: String, failures: Int)
    /// The server (HTTP `status`, usually 429 or 503) asked to wait `seconds` before another
    /// request (`Retry-After`), longer than the `cap` this client waits.
    case retryAfterTooLong(url: String, status: Int, seconds: Double, cap: Double)
    /// Retries ran out; `last` is the final failure.
    indirect case retriesExhausted(attempts: Int, last: HTTPError)

    /// Whether another attempt may succeed (connection trouble, timeouts, truncated or
    /// malformed bodies, 408, 409, 429 and 5xx).
    public var isRetryable: Bool {
        switch self {
        case .connection, .timeout, .truncated, .malformedResponse: return true
        case .http(_, let status, _): return status == 408 || status == 409 || status == 429 || (500...599).contains(status)
        default: return false
        }
    }

    /// 401 or 403: the key is wrong or lacks access.
    public var isAuthFailure: Bool {
        if case .http(_, let status, _) = self { return status == 401 || status == 403 }
        return false
    }

    public var description: String {
        switch self {
        case .connection(let url, let reason): return "cannot connect to \(url): \(reason); check the base URL, proxy settings and network"
        case .timeout(let url, let s): return "request to \(url) timed out after \(s) s; raise the timeout or lower the concurrency"
        case .cancelled(let url): return "request to \(url) was cancelled"
        case .truncated(let url, let reason): return "response from \(url) was cut short: \(reason)"
        case .responseTooLarge(let url, let limit): return "response from \(url) exceeded \(limit) bytes; raise maxResponseBytes if this is expected"
        case .http(let url, let status, let body):
            let hint = status == 401 || status == 403 ? " (check the API key environment variable)" : status == 404 ? " (check the base URL and model name)" : ""
            return "HTTP \(status) from \(url)\(hint): \(body)"
        case .malformedResponse(let url, let reason): return "unexpected response from \(url): \(reason)"
        case .rejected(let m): return m
        case .circuitOpen(let url, let n): return "stopped calling \(url) after \(n) authentication failures in a row; fix the API key and rerun (cached verdicts are kept)"
        case .retryAfterTooLong(let url, let status, let s, let cap):
            return "HTTP \(status) from \(url) asks to wait \(Self.seconds(s)) before the next request (Retry-After), longer than the \(Self.seconds(cap)) this run waits (the smaller of 60 s and judges.timeout); "
                + "the API's quota is used up for now: rerun later (finished verdicts are kept), or lower judges.max_in_flight / the requests-per-minute budget (RateLimits.requestsPerMinute)"
        case .retriesExhausted(let n, let last): return "gave up after \(n) attempts: \(last)"
        }
    }

    /// `42 s`, or `27.8 h` for a long wait.
    public static func seconds(_ s: Double) -> String {
        if s >= 7200 { return String(format: "%.1f h", s / 3600) }
        return s == s.rounded() ? "\(Int(s)) s" : String(format: "%.1f s", s)
    }
}

extension HTTPError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}

/// Removes every occurrence of each secret from `text`. Applied to anything derived from a
/// server's answer before it is stored or reported: some APIs echo part of the key back.
package func redact(_ text: String, secrets: [String]) -> String {
    var out = text
    for s in secrets where s.count >= 4 { out = out.replacingOccurrences(of: s, with: "[redacted]") }
    return out
}
