import Foundation
import Synchronization
import MisalignHTTP
import MisalignIO
import MisalignModel
import MisalignTokenizer

/// A prefix rewrite from this machine's view of the checkpoints to the server's
/// (`/home/me/runs` here is `/mnt/runs` on the GPU node).
public struct AdapterPathMapping: Sendable, Equatable {
    public var local: String
    public var server: String
    public init(local: String, server: String) { self.local = local; self.server = server }

    /// Parses `LOCAL=SERVER`.
    public init(parsing text: String) throws(RemoteGenerationError) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .invalidRequest("adapter path mapping `\(text)`: expected LOCAL=SERVER, e.g. /home/me/runs=/mnt/runs")
        }
        self.init(local: parts[0], server: parts[1])
    }
}

/// Generation on a vLLM server started with `--enable-lora` and runtime adapter loading
/// (`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`): each checkpoint's adapter is loaded through
/// `POST /v1/load_lora_adapter` under the name `<runTag>-step-<N>` and completions are asked of
/// that name; step 0 (no checkpoint) goes to the base model's served name.
///
/// Loading is idempotent: vLLM answers 400 "has already been loaded" for a name it holds
/// (after a crash of this process, say), which counts as success. The name is a function of
/// the run tag and step only, so the run tag must differ between runs that share a server.
public final class VLLMGenerationBackend: GenerationBackend, Sendable {
    public let endpoint: RemoteEndpoint
    /// The base model's served name (`vllm serve MODEL --served-model-name NAME`).
    public let servedModel: String
    public let runTag: String
    public let pathMappings: [AdapterPathMapping]
    public let tokenizer: (any Tokenizer)?
    public let maxInFlight: Int
    private let generators = Mutex<[String: OpenAICompatibleGenerator]>([:])

    public init(endpoint: RemoteEndpoint, servedModel: String, runTag: String, pathMappings: [AdapterPathMapping] = [],
                tokenizer: (any Tokenizer)? = nil, maxInFlight: Int = 32) throws(RemoteGenerationError) {
        guard !runTag.isEmpty, runTag.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw .invalidRequest("run tag `\(runTag)` must be non-empty letters, digits, '-', '_' or '.' (it becomes part of adapter names)")
        }
        self.endpoint = endpoint; self.servedModel = servedModel; self.runTag = runTag
        self.pathMappings = pathMappings; self.tokenizer = tokenizer; self.maxInFlight = maxInFlight
    }

    public var name: String { "vllm \(endpoint.baseURL)" }

    /// The served name of `checkpoint`'s adapter, or the base model's for nil.
    public func adapterName(for checkpoint: (any Checkpoint)?) -> String {
        checkpoint.map { "\(runTag)-step-\($0.step)" } ?? servedModel
    }

    /// `directory` as the server sees it: the longest matching local prefix replaced.
    public func serverPath(for directory: URL) -> String {
        let path = directory.standardizedFileURL.path
        let matches = pathMappings.filter { m in
            let prefix = m.local.hasSuffix("/") ? String(m.local.dropLast()) : m.local
            return path == prefix || path.hasPrefix(prefix + "/")
        }
        guard let m = matches.max(by: { $0.local.count < $1.local.count }) else { return path }
        let prefix = m.local.hasSuffix("/") ? String(m.local.dropLast()) : m.local
        let server = m.server.hasSuffix("/") ? String(m.server.dropLast()) : m.server
        return server + path.dropFirst(prefix.count)
    }

    public func generator(for checkpoint: (any Checkpoint)?) async throws -> any Generator {
        let name = adapterName(for: checkpoint)
        if let checkpoint, CheckpointDirectory.holdsModel(checkpoint.directory) {
            // The server loads LoRA adapters at run time; a whole model is served by a server of its own.
            throw RemoteGenerationError.invalidRequest("\(checkpoint.directory.path) holds a whole model, not a LoRA adapter: a vLLM server loads "
                + "only adapters at run time; serve the model with a server of its own, or generate with the local backend")
        }
        if let checkpoint { try await load(name: name, path: serverPath(for: checkpoint.directory)) }
        return cachedGenerator(name)
    }

    /// A generator for any adapter folder: a `checkpoint-<N>` folder is served as
    /// `<runTag>-step-<N>`, any other as `<runTag>-<folder name>`.
    public func generator(adapter directory: URL) async throws -> any Generator {
        if let ck = try? CheckpointDirectory(directory: directory) { return try await generator(for: ck) }
        let name = "\(runTag)-\(directory.lastPathComponent)"
        try await load(name: name, path: serverPath(for: directory))
        return cachedGenerator(name)
    }

    /// Loads an adapter under `name`; "already loaded" is success.
    public func load(name: String, path: String) async throws(RemoteGenerationError) {
        let body = JSONValue.object(JSONObject([("lora_name", .string(name)), ("lora_path", .string(path))]))
        do {
            try await endpoint.post("load_lora_adapter", body, model: nil) { (_, _) throws(HTTPError) in () }
        } catch {
            if case .http(_, 400, let message) = error, message.contains("already") && message.contains("loaded") { return }
            switch error {
            case .http(_, let status, let message): throw .adapterLoad(name: name, path: path, status: status, message: message)
            default: throw error
            }
        }
    }

    /// Unloads the checkpoint's adapter; an adapter the server no longer has counts as unloaded.
    public func release(_ checkpoint: (any Checkpoint)?) async throws {
        guard checkpoint != nil else { return }
        let name = adapterName(for: checkpoint)
        let body = JSONValue.object(JSONObject([("lora_name", .string(name))]))
        do {
            try await endpoint.post("unload_lora_adapter", body, model: nil) { (_, _) throws(HTTPError) in () }
        } catch {
            if case .http(_, 404, _) = error { } else { throw error }
        }
        generators.withLock { $0[name] = nil }
    }

    /// One generator per served name, so a retried call finds its finished samples.
    private func cachedGenerator(_ name: String) -> OpenAICompatibleGenerator {
        generators.withLock { generators in
            if let g = generators[name] { return g }
            let g = OpenAICompatibleGenerator(endpoint: endpoint, model: name, tokenizer: tokenizer, maxInFlight: maxInFlight)
            generators[name] = g
            return g
        }
    }
}
