import Foundation
import MisalignHTTP

/// A judge named on the command line: `openai:MODEL[@BASE_URL]`, `anthropic:MODEL[@BASE_URL]`
/// or `local:DIR`.
public struct JudgeSpec: Sendable, Equatable {
    public enum Kind: String, Sendable { case openai, anthropic, local }
    public var kind: Kind
    /// Model name, or the model folder for `local`.
    public var model: String
    public var baseURL: String?

    public init(kind: Kind, model: String, baseURL: String? = nil) {
        self.kind = kind; self.model = model; self.baseURL = baseURL
    }

    public init(parsing text: String) throws(JudgeError) {
        guard let colon = text.firstIndex(of: ":"), let kind = Kind(rawValue: String(text[..<colon])) else {
            throw .invalidInput("judge `\(text)`: expected openai:MODEL[@URL], anthropic:MODEL[@URL] or local:DIR")
        }
        var rest = String(text[text.index(after: colon)...])
        var base: String? = nil
        // The model never contains "@http"; a local path may contain "@", so only API kinds split.
        if kind != .local, let at = rest.range(of: "@http") {
            base = String(rest[rest.index(after: at.lowerBound)...])
            rest = String(rest[..<at.lowerBound])
        }
        guard !rest.isEmpty else { throw .invalidInput("judge `\(text)`: empty model name") }
        self.init(kind: kind, model: rest, baseURL: base)
    }
}

/// Builds judges from specs, sharing one transport and one reliable client per endpoint so
/// rate limits and the auth circuit apply per API.
public final class JudgeFactory {
    public let transport: any HTTPTransport
    public let limits: RateLimits
    public let policy: RetryPolicy
    public let timeout: Double
    /// Environment variable holding the key, per API kind.
    public let keyVariables: [JudgeSpec.Kind: String]
    private let environment: [String: String]
    private var clients: [String: ReliableClient] = [:]
    /// How `local:` judges score.
    public var localMode: LocalJudge.Mode = .expectation
    /// Minimum numeric probability mass for `openai:` and `local:` judges.
    public var minNumericMass: Double = 0.25
    /// How `openai:` judges' servers spell numbers (`NumberTokens`).
    public var numbers: NumberTokens = .auto
    /// `openai:` judges' request seed (nil: none sent).
    public var seed: Int?
    /// Told when a request waits on a server's `Retry-After` or backs off (a line to show).
    public var notice: (@Sendable (String) -> Void)?
    /// Every key handed to a judge, for scrubbing output.
    public private(set) var secrets: [String] = []

    public init(transport: any HTTPTransport = CurlTransport(), limits: RateLimits = RateLimits(), policy: RetryPolicy = RetryPolicy(),
                timeout: Double = 60, keyVariables: [JudgeSpec.Kind: String] = [.openai: "OPENAI_API_KEY", .anthropic: "ANTHROPIC_API_KEY"],
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.transport = transport; self.limits = limits; self.policy = policy; self.timeout = timeout
        self.keyVariables = keyVariables; self.environment = environment
    }

    /// A key is required for the hosted APIs; a custom base URL (a local vLLM or llama.cpp
    /// server) may run without one.
    private func key(for spec: JudgeSpec) throws(JudgeError) -> String? {
        guard let variable = keyVariables[spec.kind] else { return nil }
        if let k = environment[variable], !k.isEmpty { secrets.append(k); return k }
        if spec.baseURL == nil { throw .missingAPIKey(variable: variable) }
        return nil
    }

    private func client(base: String, key: String?) -> ReliableClient {
        if let c = clients[base] { return c }
        let c = ReliableClient(transport: transport, policy: policy, limits: limits, secrets: key.map { [$0] } ?? [], notice: notice)
        clients[base] = c
        return c
    }

    public func make(_ spec: JudgeSpec) throws(JudgeError) -> any Judge {
        switch spec.kind {
        case .openai:
            let k = try key(for: spec)
            let base = spec.baseURL ?? "https://api.openai.com/v1"
            return OpenAIJudge(config: .init(model: spec.model, baseURL: base, minNumericMass: minNumericMass, timeout: timeout, numbers: numbers, seed: seed),
                               apiKey: k, client: client(base: base, key: k))
        case .anthropic:
            let k = try key(for: spec)
            let base = spec.baseURL ?? "https://api.anthropic.com/v1"
            return AnthropicJudge(config: .init(model: spec.model, baseURL: base, timeout: timeout), apiKey: k, client: client(base: base, key: k))
        case .local:
            return try LocalJudge(directory: URL(fileURLWithPath: spec.model), mode: localMode, minNumericMass: minNumericMass)
        }
    }
}
