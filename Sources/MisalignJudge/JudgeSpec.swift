import Foundation
import MisalignHTTP
import MisalignModel

/// A judge named in a config or on the command line: `openai:MODEL[@BASE_URL]`,
/// `anthropic:MODEL[@BASE_URL]`, `local:DIR`, or `SCHEME:TEXT` for a judge an embedding program
/// builds itself (`PipelineComponents.judgeFactories[SCHEME]`).
public struct JudgeSpec: Sendable, Equatable {
    public enum Kind: Hashable, Sendable {
        case openai, anthropic, local
        /// A scheme of an embedding program's own (`mine` in `mine:xyz`), built by the factory
        /// it registers for that scheme; Misalign itself builds none.
        case custom(String)

        /// The built-in APIs, in the order messages list them.
        public static let builtIn: [Kind] = [.openai, .anthropic, .local]

        /// The built-in kind spelled `rawValue` (`openai`, `anthropic`, `local`); nil for any other.
        public init?(rawValue: String) {
            guard let k = Self.builtIn.first(where: { $0.rawValue == rawValue }) else { return nil }
            self = k
        }

        /// The scheme as written before the colon.
        public var rawValue: String {
            switch self {
            case .openai: return "openai"
            case .anthropic: return "anthropic"
            case .local: return "local"
            case .custom(let scheme): return scheme
            }
        }

        /// Whether `text` can be a scheme: an ASCII letter, then ASCII letters, digits, `+`, `-`,
        /// `.` or `_` (as a URL scheme).
        public static func isScheme(_ text: String) -> Bool {
            guard let first = text.unicodeScalars.first, first.isASCII, CharacterSet.letters.contains(first) else { return false }
            return text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "+-._".unicodeScalars.contains($0)) }
        }
    }
    public var kind: Kind
    /// Model name, the model folder for `local`, or everything after the colon for a custom
    /// scheme.
    public var model: String
    public var baseURL: String?

    public init(kind: Kind, model: String, baseURL: String? = nil) {
        self.kind = kind; self.model = model; self.baseURL = baseURL
    }

    public init(parsing text: String) throws(JudgeError) {
        let expected = "expected openai:MODEL[@URL], anthropic:MODEL[@URL], local:DIR, or SCHEME:TEXT for a judge factory of your own"
        guard let colon = text.firstIndex(of: ":") else { throw .invalidInput("judge `\(text)`: \(expected)") }
        let scheme = String(text[..<colon])
        var rest = String(text[text.index(after: colon)...])
        guard let kind = Kind(rawValue: scheme) else {
            guard Kind.isScheme(scheme) else { throw .invalidInput("judge `\(text)`: \(expected)") }
            // A custom spec is kept as written: its factory reads the text after the colon.
            guard !rest.isEmpty else { throw .invalidInput("judge `\(text)`: nothing after `\(scheme):`") }
            self.init(kind: .custom(scheme), model: rest)
            return
        }
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

/// Builds a judge of a custom scheme from its spec (`JudgeSpec.Kind.custom`; the spec's `model`
/// is the text after the colon).
public typealias CustomJudgeFactory = @Sendable (JudgeSpec) throws -> any Judge

extension JudgeSpec {
    /// Why a custom spec cannot be built without a factory for its scheme, and how to give one.
    public var unregisteredMessage: String {
        let scheme = kind.rawValue
        return "judge `\(canonicalName)`: `\(scheme)` is not a built-in judge API (openai, anthropic, local); a judge of your own under `\(scheme):` "
            + "is built by a factory registered for that scheme: PipelineComponents.judgeFactories[\"\(scheme)\"] in a program embedding Misalign (Docs/Embedding.md)"
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
    /// `local:` judges' product arithmetic (`LocalJudge.precision`).
    public var localPrecision: ComputePrecision = .f32
    /// How `openai:` judges' servers spell numbers (`NumberTokens`).
    public var numbers: NumberTokens = .auto
    /// `openai:` judges' request seed (nil: none sent).
    public var seed: Int?
    /// Told when a request waits on a server's `Retry-After` or backs off (a line to show).
    public var notice: (@Sendable (String) -> Void)?
    /// Factories of custom schemes (`mine` for `mine:xyz`); a custom spec without one is refused
    /// (`JudgeSpec.unregisteredMessage`).
    public var custom: [String: CustomJudgeFactory] = [:]
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
            return try LocalJudge(directory: URL(fileURLWithPath: spec.model), mode: localMode, minNumericMass: minNumericMass,
                                  precision: localPrecision)
        case .custom(let scheme):
            guard let make = custom[scheme] else { throw .invalidInput(spec.unregisteredMessage) }
            do { return try make(spec) } catch let error as JudgeError { throw error } catch {
                throw .invalidInput("judge `\(spec.canonicalName)`: its factory failed: \(error)")
            }
        }
    }
}
