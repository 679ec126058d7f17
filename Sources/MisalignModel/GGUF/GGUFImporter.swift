import Foundation
import MisalignIO
import MisalignKernels

/// How `GGUFImporter` writes a model folder.
public struct GGUFImportOptions: Sendable {
    /// Stored weight type: `.bf16` (the default: what Hugging Face checkpoints of these models
    /// hold, half the size of f32; every F16/BF16/Q8_0/K-quant value rounds to the nearest bf16),
    /// `.f32` (exact: every dequantised value as gguf-py computes it) or `.f16`.
    public var dtype: DType
    /// Largest shard in bytes before the weights are split into
    /// `model-0000i-of-0000n.safetensors` with a `model.safetensors.index.json` (5 GB, as
    /// transformers' `save_pretrained` did by default).
    public var maxShardBytes: Int
    /// Replace an existing non-empty output folder (else `GGUFError.outputNotEmpty`).
    public var overwrite: Bool

    public init(dtype: DType = .bf16, maxShardBytes: Int = 5_000_000_000, overwrite: Bool = false) {
        precondition(dtype.isFloat16or32, "weights are stored as F32, BF16 or F16")
        self.dtype = dtype
        self.maxShardBytes = maxShardBytes
        self.overwrite = overwrite
    }
}

/// Progress of an import: tensors and source bytes done so far.
public struct GGUFImportProgress: Sendable {
    public let tensorsDone: Int
    public let tensorCount: Int
    public let bytesDone: Int
    public let totalBytes: Int
    /// The GGUF name of the tensor just written.
    public let tensor: String
}

/// What an import wrote.
public struct GGUFImportResult: Sendable {
    public let directory: URL
    public let architecture: GGUFArchitecture
    /// Weight files written, in order (one `model.safetensors`, or the shards).
    public let weightFiles: [String]
    public let tensorCount: Int
    /// Bytes of weights written.
    public let weightBytes: Int
    /// Why no tokenizer files were written (an unsupported tokenizer), nil when they were.
    public let tokenizerSkipped: String?
}

/// Converts a GGUF model (llama.cpp's format; `qwen2`, `llama`, `gemma2`) into a Hugging Face
/// model folder: `config.json`, safetensors weights with HF tensor names and layouts,
/// `tokenizer.json` and `tokenizer_config.json` (Docs/GGUF.md).
///
/// Tensors are dequantised one at a time from the mapped file and streamed into the output, so
/// the memory used is the largest tensor in f32, never the model twice. Everything is written
/// into a temporary folder beside the output, which is renamed into place at the end: a failed
/// or interrupted import leaves no partial model folder.
public enum GGUFImporter {
    /// Imports `file` into the folder `directory` (created; it must not exist or be empty unless
    /// `options.overwrite`). `progress` is called after each tensor.
    @discardableResult
    public static func `import`(file: URL, to directory: URL, options: GGUFImportOptions = GGUFImportOptions(),
                                progress: ((GGUFImportProgress) -> Void)? = nil) throws -> GGUFImportResult {
        let f = try GGUFFile(url: file)
        guard let archName = try f.string("general.architecture") else { throw GGUFError.missingKey(file: f.path, key: "general.architecture") }
        guard let arch = GGUFArchitecture(rawValue: archName) else {
            throw GGUFError.unsupportedArchitecture(file: f.path, architecture: archName, supported: GGUFArchitecture.allCases.map(\.rawValue))
        }
        let plan = try plan(f, arch)
        let config = try GGUFModelConfig.build(f, architecture: arch, dtype: options.dtype == .f32 ? "float32" : options.dtype == .f16 ? "float16" : "bfloat16")
        var tokenizer: GGUFTokenizerFiles?, skipped: String?
        do { tokenizer = try GGUFTokenizerFiles(f, contextLength: config["max_position_embeddings"]?.intValue) } catch let e as GGUFError {
            guard case .unsupportedTokenizer = e else { throw e }
            skipped = e.description
        }
        let staging = try OutputFolder(directory, overwrite: options.overwrite)
        defer { staging.discard() }
        let heads = config["num_attention_heads"]?.intValue ?? 0, kvHeads = config["num_key_value_heads"]?.intValue ?? 0
        let shards = shard(plan, bytesPerElement: options.dtype.size, maxBytes: options.maxShardBytes)
        let totalBytes = plan.reduce(0) { $0 + $1.info.byteRange.count }
        var done = 0, bytesDone = 0
        var weightFiles: [String] = [], weightMap: [(String, JSONValue)] = []
        for (s, members) in shards.enumerated() {
            let name = shards.count == 1 ? "model.safetensors" : String(format: "model-%05d-of-%05d.safetensors", s + 1, shards.count)
            weightFiles.append(name)
            let declared = members.map { ($0.hfName, options.dtype, $0.info.shape) }
            try StreamingSafeTensorsWriter.write(to: staging.temporary.appendingPathComponent(name), metadata: ["format": "pt"], tensors: declared) { i, emit in
                let t = members[i]
                var x = try GGUFDequantizer.floats(f, t.info)
                f.releasePages(of: t.info)
                switch arch.transform(for: t.info.name, heads: heads, kvHeads: kvHeads) {
                case .none: break
                case .unpermuteRows(let h): x = try GGUFTransforms.unpermuteRows(x, heads: h, file: f.path, tensor: t.info.name)
                case .subtractOne: GGUFTransforms.subtractOne(x)
                }
                emit(x)
                done += 1
                bytesDone += t.info.byteRange.count
                progress?(GGUFImportProgress(tensorsDone: done, tensorCount: plan.count, bytesDone: bytesDone, totalBytes: totalBytes, tensor: t.info.name))
            }
            weightMap += members.map { ($0.hfName, .string(name)) }
        }
        let weightBytes = plan.reduce(0) { $0 + $1.info.elementCount * options.dtype.size }
        if shards.count > 1 {
            let index = JSONObject([("metadata", .object(JSONObject([("total_size", .int(Int64(weightBytes)))]))),
                                    ("weight_map", .object(JSONObject(weightMap.sorted { $0.0 < $1.0 })))])
            try staging.write(.object(index), to: ShardedSafeTensors.indexFileName)
        }
        try staging.write(.object(config), to: "config.json")
        if let tokenizer {
            try staging.write(.object(tokenizer.tokenizer), to: "tokenizer.json")
            try staging.write(.object(tokenizer.config), to: "tokenizer_config.json")
        }
        try staging.commit()
        return GGUFImportResult(directory: directory, architecture: arch, weightFiles: weightFiles, tensorCount: plan.count,
                                weightBytes: weightBytes, tokenizerSkipped: skipped)
    }

    struct Planned { let info: GGUFTensorInfo; let hfName: String }

    /// Every tensor's HF name, refusing unknown tensors and unsupported types before anything is
    /// written, and checking the model has its embedding.
    static func plan(_ f: GGUFFile, _ arch: GGUFArchitecture) throws -> [Planned] {
        var out: [Planned] = []
        for t in f.tensors {
            if arch.isConsumed(t.name) { continue }
            guard let hf = arch.hfName(for: t.name) else {
                throw GGUFError.unexpectedTensor(file: f.path, tensor: t.name, detail: "is not a tensor of a \(arch.rawValue) model the importer maps; the file holds another architecture than general.architecture says, or one of its variants")
            }
            guard t.type.isSupported else { throw GGUFError.unsupportedTensorType(file: f.path, tensor: t.name, type: t.type.name) }
            out.append(Planned(info: t, hfName: hf))
        }
        guard out.contains(where: { $0.info.name == "token_embd.weight" }) else {
            throw GGUFError.unexpectedTensor(file: f.path, tensor: "token_embd.weight", detail: "is missing; a \(arch.rawValue) model needs its token embedding")
        }
        return out
    }

    /// Tensors grouped, in file order, into shards of at most `maxBytes` (a larger tensor gets
    /// a shard of its own).
    static func shard(_ plan: [Planned], bytesPerElement: Int, maxBytes: Int) -> [[Planned]] {
        var shards: [[Planned]] = [[]], size = 0
        for t in plan {
            let n = t.info.elementCount * bytesPerElement
            if size > 0, size + n > maxBytes { shards.append([]); size = 0 }
            shards[shards.count - 1].append(t)
            size += n
        }
        return shards
    }
}
