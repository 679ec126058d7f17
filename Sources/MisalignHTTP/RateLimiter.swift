import Foundation
import Synchronization

/// Requests in flight, requests per minute and tokens per minute for one API. Budgets are
/// token buckets that refill continuously (capacity = one minute's budget), which is how the
/// hosted APIs account for them.
public struct RateLimits: Sendable, Equatable {
    public var maxInFlight: Int
    public var requestsPerMinute: Double?
    public var tokensPerMinute: Double?
    public init(maxInFlight: Int = 16, requestsPerMinute: Double? = nil, tokensPerMinute: Double? = nil) {
        self.maxInFlight = maxInFlight; self.requestsPerMinute = requestsPerMinute; self.tokensPerMinute = tokensPerMinute
    }
}

/// Enforces `RateLimits`. `acquire` waits for a slot and budget; `release` frees the slot.
public actor RateLimiter {
    public let limits: RateLimits
    private let clock: any JudgeClock
    private var inFlight = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var requestTokens: Double
    private var tokenTokens: Double
    private var last: Double

    public init(_ limits: RateLimits, clock: any JudgeClock = SystemJudgeClock()) {
        self.limits = limits
        self.clock = clock
        requestTokens = limits.requestsPerMinute ?? 0
        tokenTokens = limits.tokensPerMinute ?? 0
        last = clock.now()
    }

    /// Waits for an in-flight slot, then for `tokens` of token budget and one request.
    public func acquire(tokens: Int) async {
        if inFlight >= limits.maxInFlight {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            inFlight += 1
        }
        while true {
            refill()
            var wait = 0.0
            if let rpm = limits.requestsPerMinute, requestTokens < 1 { wait = max(wait, (1 - requestTokens) / (rpm / 60)) }
            // A request larger than a whole minute's budget could never pass; let it through
            // when the bucket is full rather than deadlock.
            if let tpm = limits.tokensPerMinute {
                let need = min(Double(tokens), tpm)
                if tokenTokens < need { wait = max(wait, (need - tokenTokens) / (tpm / 60)) }
            }
            if wait <= 0 { break }
            await clock.sleep(seconds: wait)
        }
        if limits.requestsPerMinute != nil { requestTokens -= 1 }
        if limits.tokensPerMinute != nil { tokenTokens -= Double(tokens) }
    }

    /// Frees the slot taken by `acquire`; `actualTokens` corrects the token estimate.
    public func release(estimatedTokens: Int, actualTokens: Int?) {
        if limits.tokensPerMinute != nil, let actual = actualTokens { tokenTokens -= Double(actual - estimatedTokens) }
        if waiters.isEmpty { inFlight -= 1 } else { waiters.removeFirst().resume() } // hand the slot over
    }

    private func refill() {
        let t = clock.now()
        let dt = max(0, t - last)
        last = t
        if let rpm = limits.requestsPerMinute { requestTokens = min(rpm, requestTokens + dt * rpm / 60) }
        if let tpm = limits.tokensPerMinute { tokenTokens = min(tpm, tokenTokens + dt * tpm / 60) }
    }
}

/// Opens after `threshold` authentication failures (401/403) in a row, after which every call
/// fails at once: a bad key should cost a handful of requests, not a whole sweep.
public final class AuthCircuit: Sendable {
    public let threshold: Int
    private let consecutive = Mutex(0)
    public init(threshold: Int = 3) { self.threshold = threshold }
    public var isOpen: Bool { failures >= threshold }
    public var failures: Int { consecutive.withLock { $0 } }
    func recordAuthFailure() { consecutive.withLock { $0 += 1 } }
    func recordSuccess() { consecutive.withLock { $0 = 0 } }
}
