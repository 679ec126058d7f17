import ArgumentParser
import Foundation
import MisalignCore

/// Flags that point generation at an OpenAI-compatible server serving LoRA adapters (vLLM).
struct RemoteOptions: ParsableArguments {
    @Option(help: "Generate on this OpenAI-compatible server (up to /v1), e.g. http://127.0.0.1:8000/v1.")
    var server: String?
    @Option(help: "The base model's name on the server (vllm serve --served-model-name).")
    var servedModel: String = "base"
    @Option(help: "Prefix of the adapter names loaded into the server (<tag>-step-<N>).")
    var runTag: String = "misalign"
    @Option(help: "LOCAL=SERVER: rewrite adapter paths for the server's filesystem (repeatable).")
    var adapterPathMap: [String] = []
    @Option(help: "Environment variable holding the server's API key (none by default).")
    var apiKeyEnv: String?
    @Option(parsing: .unconditional, help: "Requests in flight to the server.")
    var serverMaxInFlight: Int = 32
    @Option(parsing: .unconditional, help: "Attempts per server request, the first included (backoff between them).")
    var serverMaxAttempts: Int = 6
    @Option(parsing: .unconditional, help: "Seconds allowed per server request.")
    var serverTimeout: Double = 600

    func backend(tokenizer: (any Tokenizer)?) throws -> VLLMGenerationBackend {
        guard let server else { throw ValidationError("--server is required") }
        let endpoint = try RemoteEndpoint(baseURL: server, apiKeyVariable: apiKeyEnv, maxInFlight: serverMaxInFlight,
                                      maxAttempts: serverMaxAttempts, timeout: serverTimeout)
        return try VLLMGenerationBackend(endpoint: endpoint, servedModel: servedModel, runTag: runTag,
                                         pathMappings: try adapterPathMap.map { try AdapterPathMapping(parsing: $0) },
                                         tokenizer: tokenizer, maxInFlight: serverMaxInFlight)
    }
}
