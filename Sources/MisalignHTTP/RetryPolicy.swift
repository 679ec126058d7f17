import Foundation

/// When and how long to wait before trying a request again.
public struct RetryPolicy: Sendable, Equatable {
    /// Total attempts, the first included.
    public var maxAttempts: Int
    /// Delay before the second attempt; doubles each time ("exponential backoff").
    public var baseDelay: Double
    /// Upper bound for any computed delay.
    public var maxDelay: Double
    /// Fraction of the delay drawn at random and subtracted ("jitter"), so that many workers
    /// hit by the same 429 do not all come back in the same instant.
    public var jitter: Double
    /// A server's `Retry-After` is honoured up to this many seconds (and never longer than
    /// the request's own timeout: `retryAfterCap`); a server asking for longer ends the
    /// request with `HTTPError.retryAfterTooLong` instead of a silent, hours-long wait.
    public var maxRetryAfter: Double

    public init(maxAttempts: Int = 6, baseDelay: Double = 0.5, maxDelay: Double = 60, jitter: Double = 0.5, maxRetryAfter: Double = 60) {
        self.maxAttempts = maxAttempts; self.baseDelay = baseDelay; self.maxDelay = maxDelay
        self.jitter = jitter; self.maxRetryAfter = maxRetryAfter
    }

    /// Delay after failed attempt number `attempt` (1-based), using the server's hint when it
    /// gave one. `random` is uniform in [0, 1).
    public func delay(afterAttempt attempt: Int, serverHint: Double?, random: Double) -> Double {
        if let hint = serverHint { return min(max(0, hint), maxRetryAfter) }
        let exp = min(maxDelay, baseDelay * pow(2, Double(max(0, attempt - 1))))
        return exp * (1 - jitter * random)
    }

    /// The longest server-requested wait honoured for a request allowed `timeout` seconds:
    /// `maxRetryAfter`, or the timeout when that is shorter (`--timeout` bounds a rate-limit
    /// pause as it bounds the request).
    public func retryAfterCap(timeout: Double) -> Double {
        timeout > 0 ? min(maxRetryAfter, timeout) : maxRetryAfter
    }

    /// The server's requested wait from `retry-after-ms` (OpenAI, milliseconds) or
    /// `Retry-After` (RFC 9110: delay-seconds or an HTTP-date). Header names are lower-case.
    public static func serverHint(headers: [String: String], now: Date = Date()) -> Double? {
        if let ms = headers["retry-after-ms"].flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }), ms >= 0 {
            return ms / 1000
        }
        guard let raw = headers["retry-after"]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        if let s = Double(raw), s >= 0 { return s }
        if let date = parseHTTPDate(raw) { return max(0, date.timeIntervalSince(now)) }
        return nil
    }

    /// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the only HTTP-date form senders may use;
    /// the obsolete RFC 850 and asctime forms are accepted too, as recipients must.
    static func parseHTTPDate(_ s: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            f.dateFormat = format
            if let d = f.date(from: s) { return d }
        }
        return nil
    }
}
