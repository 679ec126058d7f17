import Foundation
import Synchronization

/// Sends API requests with retries, rate limits and the authentication circuit. One per
/// API endpoint (shared by every judge that calls it), so limits apply to the endpoint.
public final class ReliableClient: Sendable {
    public let transport: any HTTPTransport
    public let policy: RetryPolicy
    public let limiter: RateLimiter
    public let circuit: AuthCircuit
    private let clock: any JudgeClock
    /// Strings scrubbed from every error and stored body (the API keys in use).
    package let secrets: [String]
    private let requestCounter = Counter()
    /// Told, in a line, whenever a retry waits a second or more and why (a server's
    /// `Retry-After`, or backoff after an error), at most once per `noticeInterval` seconds
    /// of the clock: a long pause is never silent.
    let notice: (@Sendable (String) -> Void)?
    let noticeInterval: Double
    private let lastNotice = LastNotice()

    public init(transport: any HTTPTransport, policy: RetryPolicy = RetryPolicy(), limits: RateLimits = RateLimits(),
                circuit: AuthCircuit = AuthCircuit(), clock: any JudgeClock = SystemJudgeClock(), secrets: [String] = [],
                notice: (@Sendable (String) -> Void)? = nil, noticeInterval: Double = 10) {
        self.transport = transport
        self.policy = policy
        self.clock = clock
        self.limiter = RateLimiter(limits, clock: clock)
        self.circuit = circuit
        self.secrets = secrets
        self.notice = notice
        self.noticeInterval = noticeInterval
    }

    /// HTTP requests actually sent (every attempt counts).
    public var requestsSent: Int { requestCounter.value }

    /// Sends `request` until `decode` accepts a 2xx response, retrying what `HTTPError.isRetryable`
    /// allows. `decode` throws `malformedResponse` for a body that does not parse, which is
    /// retried too (a truncated or garbled body is usually transient). Returns the decoded
    /// value and the number of attempts made.
    public func perform<T>(_ request: HTTPRequest, estimatedTokens: Int,
                           tokensUsed: (T) -> Int? = { _ in nil },
                           decode: (HTTPResponse) throws(HTTPError) -> T) async throws(HTTPError) -> (T, attempts: Int) {
        var attempt = 0
        while true {
            attempt += 1
            if Task.isCancelled { throw .cancelled(url: request.url) }
            if circuit.isOpen { throw .circuitOpen(url: request.url, failures: circuit.failures) }
            await limiter.acquire(tokens: estimatedTokens)
            requestCounter.add()
            let outcome: Result<T, HTTPError>
            var hint: Double? = nil
            var status = 0
            do {
                let response = try await transport.send(request)
                if (200..<300).contains(response.status) {
                    outcome = Result { () throws(HTTPError) -> T in try decode(response) }
                } else {
                    hint = RetryPolicy.serverHint(headers: response.headers)
                    status = response.status
                    outcome = .failure(.http(url: request.url, status: response.status, body: excerpt(response.body)))
                }
            } catch {
                outcome = .failure(error)
            }
            switch outcome {
            case .success(let value):
                await limiter.release(estimatedTokens: estimatedTokens, actualTokens: tokensUsed(value))
                circuit.recordSuccess()
                return (value, attempt)
            case .failure(let error):
                await limiter.release(estimatedTokens: estimatedTokens, actualTokens: nil)
                let error = scrub(error)
                if error.isAuthFailure {
                    circuit.recordAuthFailure()
                    throw error
                }
                guard error.isRetryable else { throw error }
                let cap = policy.retryAfterCap(timeout: request.timeout)
                if let hint, hint > cap {
                    throw .retryAfterTooLong(url: request.url, status: status, seconds: hint, cap: cap)
                }
                guard attempt < policy.maxAttempts else { throw .retriesExhausted(attempts: attempt, last: error) }
                let wait = policy.delay(afterAttempt: attempt, serverHint: hint, random: Double.random(in: 0..<1))
                if wait >= 1, let notice, lastNotice.due(now: clock.now(), interval: noticeInterval) {
                    let why = hint != nil ? "the server asked to wait \(HTTPError.seconds(wait)) (Retry-After)"
                        : "backing off \(HTTPError.seconds(wait.rounded()))"
                    notice("\(status > 0 ? "HTTP \(status)" : "no answer") from \(request.url): \(why); retrying then (attempt \(attempt + 1) of \(policy.maxAttempts))")
                }
                await clock.sleep(seconds: wait)
            }
        }
    }

    /// The first 300 characters of a body, key-scrubbed, for error messages.
    func excerpt(_ body: Data) -> String {
        let text = String(decoding: body.prefix(300), as: UTF8.self)
        return redact(text, secrets: secrets)
    }

    package func scrub(_ error: HTTPError) -> HTTPError {
        switch error {
        case .http(let url, let status, let body): return .http(url: url, status: status, body: redact(body, secrets: secrets))
        case .malformedResponse(let url, let reason): return .malformedResponse(url: url, reason: redact(reason, secrets: secrets))
        default: return error
        }
    }
}

/// When the last wait notice went out (`ReliableClient.notice`), so 64 workers hit by one 429
/// make one line, not 64.
final class LastNotice: Sendable {
    private let last = Mutex(-Double.infinity)
    func due(now: Double, interval: Double) -> Bool {
        last.withLock { last in
            guard now - last >= interval else { return false }
            last = now
            return true
        }
    }
}

/// A thread-safe counter.
final class Counter: Sendable {
    private let n = Mutex(0)
    func add(_ k: Int = 1) { n.withLock { $0 += k } }
    var value: Int { n.withLock { $0 } }
}
