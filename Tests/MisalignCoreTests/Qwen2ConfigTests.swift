import Testing
import Foundation
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

@Suite struct Qwen2ConfigTests {
    @Test func decodesTransformers5Config() throws {
        let c = try Qwen2Config.load(from: Fixtures.url("qwen2-small"))
        #expect(c.hiddenSize == 64 && c.intermediateSize == 128 && c.numHiddenLayers == 2)
        #expect(c.numAttentionHeads == 4 && c.numKeyValueHeads == 2 && c.headDim == 16)
        #expect(c.vocabSize == 512 && c.ropeTheta == 25000 && c.rmsNormEps == 1e-6)
        #expect(c.tieWordEmbeddings && c.dtype == "float32")
        #expect(c.eosTokenIds == [151645])
        // The parameter count agrees with the tensors actually stored.
        let weights = try ShardedSafeTensors(directory: Fixtures.url("qwen2-small"))
        #expect(c.parameterCount == weights.tensorInfos.reduce(0) { $0 + $1.elementCount })
        let untied = try Qwen2Config.load(from: Fixtures.url("qwen2-small-bf16-sharded"))
        #expect(!untied.tieWordEmbeddings && untied.dtype == "bfloat16")
        let w2 = try ShardedSafeTensors(directory: Fixtures.url("qwen2-small-bf16-sharded"))
        #expect(untied.parameterCount == w2.tensorInfos.reduce(0) { $0 + $1.elementCount })
    }

    /// A Qwen2.5 config as older transformers wrote it: `rope_theta` and `torch_dtype` at the
    /// top level, `eos_token_id` a list, an explicit `head_dim`.
    @Test func decodesOlderKeys() throws {
        let text = """
        {"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_size":896,"intermediate_size":4864,
         "num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"vocab_size":151936,
         "max_position_embeddings":32768,"rms_norm_eps":1e-06,"rope_theta":1000000.0,"rope_scaling":null,
         "tie_word_embeddings":true,"torch_dtype":"bfloat16","eos_token_id":[151645,151643],"head_dim":64,
         "use_sliding_window":false,"sliding_window":32768,"hidden_act":"silu"}
        """
        let c = try Qwen2Config.decode(Data(text.utf8))
        #expect(c.ropeTheta == 1_000_000 && c.dtype == "bfloat16" && c.eosTokenIds == [151645, 151643] && c.headDim == 64)
        #expect(c.qDim == 896 && c.kvDim == 128)
        // Qwen2.5-0.5B has 494M parameters.
        #expect(c.parameterCount == 494_032_768)
    }

    @Test(arguments: [
        (#""hidden_size":"64""#, "hidden_size"),
        (#""num_key_value_heads":3"#, "num_key_value_heads"),
        (#""hidden_size":0"#, "hidden_size"),
        (#""rope_parameters":{"rope_type":"yarn","rope_theta":1.0}"#, "rope_parameters.rope_type"),
        (#""model_type":"mistral""#, "model_type"),
        (#""use_sliding_window":true"#, "use_sliding_window"),
        (#""eos_token_id":"x""#, "eos_token_id"),
        (#""rms_norm_eps":-1"#, "rms_norm_eps"),
    ])
    func invalidFieldsAreNamed(override: String, field: String) throws {
        var fields = [
            "\"model_type\":\"qwen2\"", "\"hidden_size\":64", "\"intermediate_size\":128", "\"num_hidden_layers\":2",
            "\"num_attention_heads\":4", "\"num_key_value_heads\":2", "\"vocab_size\":512",
        ]
        let key = String(override.split(separator: ":")[0])
        fields.removeAll { $0.hasPrefix(key + ":") }
        fields.append(override)
        let text = "{" + fields.joined(separator: ",") + "}"
        #expect {
            _ = try Qwen2Config.decode(Data(text.utf8), file: "/m/config.json")
        } throws: { error in
            let e = error as! ConfigError
            return "\(e)".contains("\"\(field)\"") && "\(e)".contains("/m/config.json")
        }
    }

    @Test func missingFieldAndFile() {
        #expect(throws: ConfigError.missingField(file: "config.json", field: "vocab_size")) {
            _ = try Qwen2Config.decode(Data(#"{"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2}"#.utf8))
        }
        #expect(throws: ConfigError.self) { _ = try Qwen2Config.load(from: URL(fileURLWithPath: "/nonexistent/model")) }
        #expect(throws: ConfigError.self) { _ = try Qwen2Config.decode(Data("{oops".utf8)) }
    }

    /// `rope_scaling` (older transformers' key) asking for yarn is refused even beside a
    /// transformers-5 `rope_parameters` of type default, under either spelling of the type.
    @Test(arguments: [#"{"type":"yarn","factor":4.0,"original_max_position_embeddings":32768}"#,
                      #"{"rope_type":"linear","factor":2.0}"#, #""yarn""#])
    func ropeScalingBesideDefaultRopeParametersIsRefused(scaling: String) throws {
        let text = """
        {"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,
         "num_key_value_heads":2,"vocab_size":512,"rope_parameters":{"rope_type":"default","rope_theta":25000.0},
         "rope_scaling":\(scaling)}
        """
        #expect {
            _ = try Qwen2Config.decode(Data(text.utf8), file: "/m/config.json")
        } throws: { error in
            "\(error)".hasPrefix("/m/config.json: field \"rope_scaling\"")
        }
        // No scaling, or the default type, is fine.
        for ok in ["null", #"{"rope_type":"default"}"#, "{}"] {
            let c = try Qwen2Config.decode(Data(text.replacingOccurrences(of: scaling, with: ok).utf8))
            #expect(c.ropeTheta == 25000)
        }
    }

    /// A config.json declaring fewer layers than the weights hold is refused by every loader
    /// (generate and train load `Qwen2Weights`, inspect `WeightsSummary`), naming both counts.
    @Test func fewerLayersInTheConfigThanInTheWeights() throws {
        let dir = Fixtures.temporaryDirectory("config-layers")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Fixtures.url("qwen2-small/model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        let config = try String(contentsOf: Fixtures.url("qwen2-small/config.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": 1")
        try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        #expect(try Qwen2Config.load(from: dir).numHiddenLayers == 1)
        let file = dir.appendingPathComponent("config.json").path
        let want = ConfigError.invalidField(file: file, field: "num_hidden_layers", detail: "is 1, but the weights hold layers up to model.layers.1 (2 layers); the config does not belong to these weights: set num_hidden_layers to 2 or use the config.json saved with the weights")
        #expect(throws: want) { _ = try Qwen2Weights(directory: dir) }
        #expect(throws: want) { _ = try WeightsSummary.inspect(dir) }
        #expect(Qwen2Config.highestLayerIndex(in: ["model.layers.12.mlp.up_proj.weight", "model.layers.3.x", "model.norm.weight"]) == 12)
        #expect(Qwen2Config.highestLayerIndex(in: ["lm_head.weight"]) == nil)
    }
}
