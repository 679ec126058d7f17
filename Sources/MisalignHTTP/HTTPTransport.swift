import Foundation

/// One HTTP request. Headers keep their order; secrets travel only here.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: Data?
    /// Seconds allowed for the TCP/TLS connection.
    public var connectTimeout: Double
    /// Seconds allowed for the whole transfer.
    public var timeout: Double
    /// Bodies larger than this fail with `responseTooLarge` instead of filling memory.
    public var maxResponseBytes: Int

    public init(method: String = "POST", url: String, headers: [(String, String)] = [], body: Data? = nil,
                connectTimeout: Double = 10, timeout: Double = 60, maxResponseBytes: Int = 8 << 20) {
        self.method = method; self.url = url; self.headers = headers; self.body = body
        self.connectTimeout = connectTimeout; self.timeout = timeout; self.maxResponseBytes = maxResponseBytes
    }
}

/// A complete HTTP response. Header names are lower-cased (HTTP names are case-insensitive).
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data
    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status; self.headers = headers; self.body = body
    }
}

/// Sends requests. `CurlTransport` is the real one; tests and users may substitute their own.
/// Implementations throw only `HTTPError` transport cases (`connection`, `timeout`,
/// `truncated`, `responseTooLarge`); HTTP error statuses are returned, not thrown.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws(HTTPError) -> HTTPResponse
}
