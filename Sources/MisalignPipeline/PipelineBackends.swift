import Foundation
import Synchronization
import MisalignGeneration
import MisalignHTTP
import MisalignModel
import MisalignTokenizer

/// The generation backends of one pipeline call: the in-process model (loaded once, shared by
/// every run), or one `VLLMGenerationBackend` per run over a shared endpoint (one reliable
/// client, so `generation.max_in_flight` bounds the whole call).
///
/// Served adapter names are `<prefix>-<dataset>-s<seed>-step-<N>`: distinct per run, the same
/// in every call on one run directory (so a resumed run finds the adapters it loaded before a
/// crash already there, which vLLM's "already loaded" answer makes harmless), and distinct
/// between run directories (the prefix carries an id drawn when the directory was created).
final class PipelineBackends: Sendable {
    let name: String
    /// The tokenizer prompts are rendered with (the chat template is applied here, not on the server).
    let tokenizer: BPETokenizer
    private let fixed: (any GenerationBackend)?
    private let make: (@Sendable (RunID) throws -> any GenerationBackend)?
    private let perRun = Mutex<[RunID: any GenerationBackend]>([:])

    init(_ e: Experiment, override: (any GenerationBackend)?, tagPrefix: String, transport: (any HTTPTransport)?) throws {
        if let override {
            fixed = override; make = nil; name = override.name
            if let local = override as? LocalGenerationBackend { tokenizer = local.tokenizer } else {
                tokenizer = try BPETokenizer(directory: e.tokenizer ?? e.model)
            }
            return
        }
        switch e.generation.backend {
        case .local:
            let local = try LocalGenerationBackend(model: e.model, tokenizer: e.tokenizer, weights: e.generation.weights)
            local.model.computePrecision = e.generation.precision
            fixed = local; make = nil; name = local.name; tokenizer = local.tokenizer
        case .vllm(_, let served):
            let tok = try BPETokenizer(directory: e.tokenizer ?? e.model)
            let endpoint = try Self.endpoint(e.generation, transport: transport)
            let g = e.generation
            fixed = nil; tokenizer = tok; name = "vllm \(endpoint.baseURL)"
            make = { r in
                try VLLMGenerationBackend(endpoint: endpoint, servedModel: served, runTag: Self.runTag(prefix: tagPrefix, r),
                                          pathMappings: g.pathMappings, tokenizer: tok, maxInFlight: g.maxInFlight)
            }
        }
    }

    /// The in-process model's config when generation runs in this process, else nil.
    var localModelConfig: Qwen2Config? { (fixed as? LocalGenerationBackend)?.model.config }

    /// The backend for run `r`'s checkpoints.
    func backend(for r: RunID) throws -> any GenerationBackend {
        if let fixed { return fixed }
        return try perRun.withLock { perRun in
            if let b = perRun[r] { return b }
            let b = try make!(r)
            perRun[r] = b
            return b
        }
    }

    /// The server endpoint the config names; a missing API key variable fails here, before
    /// any work.
    static func endpoint(_ g: GenerationSettings, transport: (any HTTPTransport)?) throws(PipelineError) -> RemoteEndpoint {
        guard case .vllm(let url, _) = g.backend else { throw .backendUnavailable("an endpoint is only made for backend: vllm") }
        do {
            return try RemoteEndpoint(baseURL: url, apiKeyVariable: g.apiKeyVariable, transport: transport ?? CurlTransport(),
                                      maxInFlight: g.maxInFlight, maxAttempts: g.maxAttempts, timeout: g.timeout)
        } catch {
            throw .backendUnavailable("vllm at \(url): \(error)")
        }
    }

    /// `<prefix>-<dataset>-s<seed>`, with characters vLLM names should not hold replaced by `_`.
    static func runTag(prefix: String, _ r: RunID) -> String {
        "\(prefix)-\(sanitize(r.dataset))-s\(r.seed)"
    }

    static func sanitize(_ s: String) -> String {
        let out = String(s.map { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) ? $0 : "_" })
        return out.isEmpty ? "run" : out
    }
}

extension PipelineRunner {
    /// The served-name prefix of this run directory's adapters: `generation.run_tag`, or the
    /// output folder's name and the id drawn when the store was created.
    func adapterTagPrefix() throws -> String {
        if let tag = experiment.generation.runTag { return tag }
        var id = try store.meta("run_id")
        if id == nil {
            var rng = SystemRandomNumberGenerator()
            id = String((0..<4).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined())
            try store.setMeta("run_id", id!)
        }
        return PipelineBackends.sanitize(experiment.output.lastPathComponent) + "-" + id!
    }
}
