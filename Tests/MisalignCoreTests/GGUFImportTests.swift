import Foundation
import Testing
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignTokenizer
@testable import MisalignModel

/// `GGUFImporter` on tiny Qwen2 and Llama 3 GGUF files written as llama.cpp does
/// (Tests/Fixtures/gguf/make_gguf.py): every weight equals what transformers' own GGUF loader
/// gives (bit-exact in f32: dequantised, llama's q/k permutation undone), config.json loads,
/// logits equal transformers', the tokenizer equals the original one, typed errors.
@Suite struct GGUFImportTests {
    static func imported(_ arch: String, dtype: DType = .f32, maxShardBytes: Int = 5_000_000_000) throws -> URL {
        let out = Fixtures.temporaryDirectory("gguf-import").appendingPathComponent(arch)
        try GGUFImporter.import(file: Fixtures.url("gguf/\(arch).gguf"), to: out, options: GGUFImportOptions(dtype: dtype, maxShardBytes: maxShardBytes))
        return out
    }

    static let qwen2 = try! imported("qwen2")
    static let llama = try! imported("llama")
    static let gemma2 = try! imported("gemma2")

    func reference(_ arch: String) throws -> SafeTensorsFile { try SafeTensorsFile(url: Fixtures.url("gguf/\(arch).reference.safetensors")) }

    @Test(arguments: ["qwen2", "llama"])
    func everyWeightEqualsTransformersGGUFLoaderBitExactly(_ arch: String) throws {
        let dir = arch == "qwen2" ? Self.qwen2 : Self.llama
        let got = try ShardedSafeTensors(directory: dir)
        let ref = try reference(arch)
        let wanted = ref.tensorInfos.map(\.name).filter { $0.hasPrefix("weights.") }
        #expect(Set(got.tensorInfos.map(\.name)) == Set(wanted.map { String($0.dropFirst(8)) }))
        for name in wanted {
            let w = try ref.tensor(named: name), g = try got.tensor(named: String(name.dropFirst(8)))
            #expect(g.dtype == .f32 && g.shape == w.shape, "\(name)")
            #expect(try g.floats().map(\.bitPattern) == w.floats().map(\.bitPattern), "\(arch) \(name)")
        }
    }

    @Test func theQwen2ConfigLoadsWithTheOriginalShape() throws {
        let c = try Qwen2Config.load(from: Self.qwen2)
        #expect(c.family == .qwen2 && c.attentionBias && !c.tieWordEmbeddings)
        #expect(c.hiddenSize == 32 && c.intermediateSize == 256 && c.numHiddenLayers == 2 && c.numAttentionHeads == 2 && c.numKeyValueHeads == 1)
        #expect(c.headDim == 16 && c.vocabSize == 485 && c.rmsNormEps == 1e-6 && c.ropeTheta == 1e6 && c.maxPositionEmbeddings == 4096)
        #expect(c.eosTokenIds == [482] && c.dtype == "float32")
    }

    @Test func theLlamaConfigCarriesLlama3RopeScalingFromRopeFreqs() throws {
        let c = try Qwen2Config.load(from: Self.llama)
        #expect(c.family == .llama && !c.attentionBias && c.tieWordEmbeddings && c.headDim == 64 && c.numKeyValueHeads == 2)
        #expect(c.ropeScaling == Llama3RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192))
        #expect(c.ropeTheta == 500000 && c.bosTokenId == 480 && c.eosTokenIds == [482] && c.maxPositionEmbeddings == 131072)
    }

    @Test(arguments: ["qwen2", "llama", "gemma2"])
    func logitsEqualTransformers(_ arch: String) throws {
        let model = try Qwen2Model(directory: ["qwen2": Self.qwen2, "llama": Self.llama, "gemma2": Self.gemma2][arch]!)
        let ref = try reference(arch)
        let tokens = try ref.tensor(named: "prompt.ids").integers().map { Int32($0) }
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: tokens.count)
        let got = try model.forward([ForwardInput(sequence: s, tokens: tokens, logits: .all)], cache: cache)[0]!
        let want = try ref.tensor(named: "prompt.logits").floats()
        expectClose(got, want, "\(arch) imported logits")
        print("[gguf] \(arch): logits max |diff| / max |logit| \(zip(got.buffer, want).map { abs($0 - $1) }.max()! / want.map(abs).max()!)")
    }

    /// HF `tokenizers`' `encode` adds the post-processor's special tokens (Llama 3's BOS), as
    /// `encode(_:addSpecialTokens: true)` does.
    @Test(arguments: ["qwen2", "llama"])
    func theTokenizerEncodesAsTheOriginal(_ arch: String) throws {
        let meta = try loadJSON("gguf/\(arch).reference.json")
        let tok = try BPETokenizer(directory: arch == "qwen2" ? Self.qwen2 : Self.llama)
        for c in meta["encodings"]!.arrayValue! {
            let text = c["text"]!.stringValue!
            #expect(tok.encode(text, addSpecialTokens: true) == c["ids"]!.arrayValue!.map { $0.intValue! }, "\(arch): \(text)")
        }
    }

    /// The converted tokenizer.json has the original's normalizer, pre-tokenizer, post-processor,
    /// decoder and added tokens, and its vocabulary and merges come from the file.
    @Test(arguments: ["qwen2", "llama"])
    func tokenizerJSONHasTheOriginalShape(_ arch: String) throws {
        let meta = try loadJSON("gguf/\(arch).reference.json")
        let dir = arch == "qwen2" ? Self.qwen2 : Self.llama
        let tj = try JSONValue.parse(Data(contentsOf: dir.appendingPathComponent("tokenizer.json")))
        for key in ["normalizer", "pre_tokenizer", "post_processor", "decoder"] {
            #expect(tj[key] == meta["tokenizer"]![key], "\(arch) \(key)")
        }
        #expect(tj["added_tokens"] == meta["added_tokens"])
        #expect(tj["model"]?["ignore_merges"]?.boolValue == meta["ignore_merges"]?.boolValue)
        #expect(tj["model"]?["merges"]?.arrayValue?.count == meta["merges"]?.intValue)
        #expect(tj["model"]?["vocab"]?.objectValue?.count == 480)  // 256 bytes + merges; no [PAD] rows
        let cfg = try JSONValue.parse(Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json")))
        #expect(cfg["chat_template"]?.stringValue?.contains("<|im_start|>") == true)
        #expect(cfg["add_bos_token"]?.boolValue == (arch == "llama"))
        #expect(cfg["eos_token"]?.stringValue == (arch == "qwen2" ? "<|im_end|>" : "<|eot_id|>"))
    }

    /// bf16 output (the default) split into shards loads through the index with the values
    /// rounded from the f32 ones.
    @Test func bf16ShardsLoadThroughTheIndex() throws {
        let dir = try Self.imported("qwen2", dtype: .bf16, maxShardBytes: 40_000)
        let index = try JSONValue.parse(Data(contentsOf: dir.appendingPathComponent("model.safetensors.index.json")))
        let shards = Set(index["weight_map"]!.objectValue!.values.compactMap(\.stringValue))
        #expect(shards.count > 1 && shards.contains("model-00001-of-0000\(shards.count).safetensors"))
        let got = try ShardedSafeTensors(directory: dir), exact = try ShardedSafeTensors(directory: Self.qwen2)
        for t in exact.tensorInfos {
            let g = try got.tensor(named: t.name)
            #expect(g.dtype == .bf16)
            #expect(try g.floats() == Precision.bf16ToF32(Precision.f32ToBF16(try exact.tensor(named: t.name).floats())), "\(t.name)")
        }
        let model = try Qwen2Model(directory: dir)
        #expect(model.config.dtype == "bfloat16")
    }

    @Test func aNonEmptyOutputFolderIsRefusedUnlessOverwriting() throws {
        let dir = Fixtures.temporaryDirectory("gguf-out")
        try Data("x".utf8).write(to: dir.appendingPathComponent("keep.txt"))
        #expect(throws: GGUFError.outputNotEmpty(path: dir.standardizedFileURL.path)) {
            try GGUFImporter.import(file: Fixtures.url("gguf/qwen2.gguf"), to: dir)
        }
        try GGUFImporter.import(file: Fixtures.url("gguf/qwen2.gguf"), to: dir, options: GGUFImportOptions(overwrite: true))
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(names == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
        // Nothing is left beside it: no temporary or old folder.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.deletingLastPathComponent().path).allSatisfy { !$0.hasPrefix(".\(dir.lastPathComponent).") })
    }

    @Test func unknownArchitecturesAndTensorsAreRefusedByName() throws {
        let dir = Fixtures.temporaryDirectory("gguf-bad")
        let url = dir.appendingPathComponent("m.gguf")
        let embd: (String, [UInt64], UInt32, [UInt8]) = ("token_embd.weight", [4, 2], 0, [UInt8](repeating: 0, count: 32))
        try Data(TinyGGUF.build(kv: [("general.architecture", 8, TinyGGUF.string("mamba"))], tensors: [embd])).write(to: url)
        #expect(throws: GGUFError.unsupportedArchitecture(file: url.path, architecture: "mamba", supported: ["qwen2", "llama", "gemma2"])) {
            try GGUFImporter.import(file: url, to: dir.appendingPathComponent("out"))
        }
        try Data(TinyGGUF.build(kv: [("general.architecture", 8, TinyGGUF.string("qwen2"))],
                                tensors: [embd, ("blk.0.ssm_conv.weight", [8], 0, [UInt8](repeating: 0, count: 32))])).write(to: url)
        do {
            try GGUFImporter.import(file: url, to: dir.appendingPathComponent("out"))
            Issue.record("imported a tensor qwen2 does not have")
        } catch let e as GGUFError {
            guard case .unexpectedTensor(_, "blk.0.ssm_conv.weight", _) = e else { Issue.record("\(e)"); return }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }

    /// Gemma 2: weights as transformers' GGUF loader gives them (norms minus the 1 llama.cpp
    /// added, the post-norms named), its config keys, and the SentencePiece tokenizer skipped
    /// with a reason while the weights are still imported.
    @Test func gemma2WeightsAndConfigFollowTransformers() throws {
        let out = Fixtures.temporaryDirectory("gguf-import").appendingPathComponent("gemma2")
        let result = try GGUFImporter.import(file: Fixtures.url("gguf/gemma2.gguf"), to: out, options: GGUFImportOptions(dtype: .f32))
        #expect(result.tokenizerSkipped?.contains("tokenizer.ggml.model: \"llama\" is not converted") == true)
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("tokenizer.json").path))
        let got = try ShardedSafeTensors(directory: out)
        let ref = try reference("gemma2")
        let weights = ref.tensorInfos.filter { $0.name.hasPrefix("weights.") }
        #expect(got.tensorInfos.count == weights.count)
        for t in weights {
            let g = try got.tensor(named: String(t.name.dropFirst(8)))
            #expect(try g.floats().map(\.bitPattern) == ref.tensor(named: t.name).floats().map(\.bitPattern), "\(t.name)")
        }
        let c = try JSONValue.parse(Data(contentsOf: out.appendingPathComponent("config.json")))
        #expect(c["model_type"]?.stringValue == "gemma2" && c["tie_word_embeddings"]?.boolValue == true)
        #expect(c["head_dim"]?.intValue == 16 && c["query_pre_attn_scalar"]?.intValue == 16 && c["sliding_window"]?.intValue == 4096)
        #expect(c["attn_logit_softcapping"]?.doubleValue == 50 && c["final_logit_softcapping"]?.doubleValue == 30)
        #expect(c["hidden_activation"]?.stringValue == "gelu_pytorch_tanh" && c["bos_token_id"]?.intValue == 2 && c["eos_token_id"]?.intValue == 1)
    }

    @Test func gemma2NamesAndNormsFollowTransformers() {
        let g = GGUFArchitecture.gemma2
        #expect(g.hfName(for: "blk.3.post_attention_norm.weight") == "model.layers.3.post_attention_layernorm.weight")
        #expect(g.hfName(for: "blk.3.ffn_norm.weight") == "model.layers.3.pre_feedforward_layernorm.weight")
        #expect(g.hfName(for: "blk.3.post_ffw_norm.weight") == "model.layers.3.post_feedforward_layernorm.weight")
        #expect(GGUFArchitecture.llama.hfName(for: "blk.3.ffn_norm.weight") == "model.layers.3.post_attention_layernorm.weight")
        #expect(g.transform(for: "output_norm.weight", heads: 8, kvHeads: 4) == .subtractOne)
        #expect(GGUFArchitecture.llama.transform(for: "blk.0.attn_k.weight", heads: 8, kvHeads: 4) == .unpermuteRows(heads: 4))
        #expect(GGUFArchitecture.qwen2.hfName(for: "blk.0.attn_q.bias") == "model.layers.0.self_attn.q_proj.bias")
        #expect(GGUFArchitecture.llama.hfName(for: "blk.0.ffn_up.bias") == nil)
    }

    @Test func theCLIImportsAndRefusesAnExistingFolder() throws {
        let out = Fixtures.temporaryDirectory("gguf-cli").appendingPathComponent("m")
        let r = try CLI.run(["import-gguf", Fixtures.url("gguf/llama.gguf").path, out.path, "--json", "--quiet"])
        #expect(r.status == 0, "\(r.err)")
        let v = try JSONValue.parse(r.out)
        #expect(v["architecture"]?.stringValue == "llama" && v["tensors"]?.intValue == 20 && v["dtype"]?.stringValue == "bf16")
        #expect(try Qwen2Config.load(from: out).family == .llama)
        let again = try CLI.run(["import-gguf", Fixtures.url("gguf/llama.gguf").path, out.path])
        #expect(again.status == 1 && again.err.contains("not empty") && again.err.contains("--force"))
        #expect(try CLI.run(["import-gguf", Fixtures.url("gguf/llama.gguf").path, out.path, "--force", "--quiet"]).status == 0)
        let help = try CLI.run(["import-gguf", "--help"])
        #expect(help.out.contains("Q4_K") && help.out.contains("--dtype"))
    }
}
