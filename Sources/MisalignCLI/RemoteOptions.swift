import ArgumentParser
import Foundation
import MisalignCore

/// Flags that point generation at an OpenAI-compatible server serving LoRA adapters (vLLM).
/// The server's URL, served name and path map are the backend; the rest are settings of the
/// library's generation table (`GenerationSettings`), as in an experiment's `generation:`.
struct RemoteOptions: ParsableArguments {
    @Option(help: "Generate on this OpenAI-compatible server (up to /v1), e.g. http://127.0.0.1:8000/v1.")
    var server: String?
    @Option(help: "The base model's name on the server (vllm serve --served-model-name).")
    var servedModel: String = "base"
    @Option(help: "Prefix of the adapter names loaded into the server (<tag>-step-<N>; default misalign).")
    var runTag: String?
    @Option(help: "LOCAL=SERVER: rewrite adapter paths for the server's filesystem (repeatable).")
    var adapterPathMap: [String] = []
    @Option(help: "Environment variable holding the server's API key (none by default).")
    var apiKeyEnv: String?
    @Option(parsing: .unconditional, help: "Requests in flight to the server (default 32).")
    var serverMaxInFlight: Int?
    @Option(parsing: .unconditional, help: "Attempts per server request, the first included, with backoff between them (default 6).")
    var serverMaxAttempts: Int?
    @Option(parsing: .unconditional, help: "Seconds allowed per server request (default 600).")
    var serverTimeout: Double?

    /// The server flags under their flag names.
    var flagSettings: FlagSettings {
        var f = FlagSettings()
        f.add("run-tag", runTag); f.add("api-key-env", apiKeyEnv); f.add("server-max-in-flight", serverMaxInFlight)
        f.add("server-max-attempts", serverMaxAttempts); f.add("server-timeout", serverTimeout)
        return f
    }

    /// The generation settings before the flags are read: the server backend with --server.
    func settings() throws -> GenerationSettings {
        var g = GenerationSettings()
        if let server {
            guard RemoteEndpoint.isServerURL(server) else { throw ValidationError("--server must start with http:// or https://") }
            g.backend = .vllm(url: server, servedModel: servedModel)
        }
        return g
    }

    func backend(_ g: GenerationSettings, tokenizer: (any Tokenizer)?) throws -> VLLMGenerationBackend {
        guard case .vllm(let url, let servedModel) = g.backend else { throw ValidationError("--server is required") }
        let endpoint = try RemoteEndpoint(baseURL: url, apiKeyVariable: g.apiKeyVariable, maxInFlight: g.maxInFlight,
                                          maxAttempts: g.maxAttempts, timeout: g.timeout)
        return try VLLMGenerationBackend(endpoint: endpoint, servedModel: servedModel, runTag: g.runTag ?? "misalign",
                                         pathMappings: try adapterPathMap.map { try AdapterPathMapping(parsing: $0) },
                                         tokenizer: tokenizer, maxInFlight: g.maxInFlight)
    }
}
