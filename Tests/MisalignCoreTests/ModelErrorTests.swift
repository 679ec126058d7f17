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

/// Bad weights and requests get typed errors naming the tensor or limit.
@Suite struct ModelErrorTests {
    /// A copy of qwen2-small in a temp folder with the tensors rewritten by `edit`.
    func modelFolder(config: ((inout String) -> Void)? = nil, edit: (inout [String: (DType, [Int], Data)]) -> Void) throws -> URL {
        let dir = Fixtures.temporaryDirectory()
        var configText = try String(contentsOf: Fixtures.url("qwen2-small/config.json"), encoding: .utf8)
        config?(&configText)
        try configText.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let src = try SafeTensorsFile(url: Fixtures.url("qwen2-small/model.safetensors"))
        var tensors: [String: (DType, [Int], Data)] = [:]
        for info in src.tensorInfos { tensors[info.name] = (info.dtype, info.shape, Data(try src.tensor(named: info.name).bytes)) }
        edit(&tensors)
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        for (name, t) in tensors { w.add(name, dtype: t.0, shape: t.1, bytes: t.2) }
        try w.write(to: dir.appendingPathComponent("model.safetensors"))
        return dir
    }

    @Test func missingTensorIsNamed() throws {
        let dir = try modelFolder { $0["model.layers.1.mlp.up_proj.weight"] = nil }
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: ModelError.missingTensor(name: "model.layers.1.mlp.up_proj.weight", source: dir.path)) {
            _ = try Qwen2Weights(directory: dir)
        }
    }

    @Test func wrongShapeForTheConfig() throws {
        let dir = try modelFolder { t in
            t["model.layers.0.self_attn.k_proj.weight"] = (.f32, [64, 64], Data(count: 64 * 64 * 4))
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: ModelError.wrongShape(name: "model.layers.0.self_attn.k_proj.weight", expected: [32, 64], found: [64, 64])) {
            _ = try Qwen2Weights(directory: dir)
        }
    }

    @Test func configDTypeDisagreesWithWeights() throws {
        let dir = try modelFolder(config: { $0 = $0.replacingOccurrences(of: "\"float32\"", with: "\"bfloat16\"") }) { _ in }
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: ModelError.dtypeMismatch(name: "model.embed_tokens.weight", config: "bfloat16", stored: .f32)) {
            _ = try Qwen2Weights(directory: dir)
        }
    }

    @Test func integerWeightsAreRejected() throws {
        let dir = try modelFolder { t in t["model.norm.weight"] = (.i32, [64], Data(count: 256)) }
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: ModelError.unsupportedDType(name: "model.norm.weight", dtype: .i32)) { _ = try Qwen2Weights(directory: dir) }
    }

    @Test func promptLongerThanTheContext() throws {
        let model = try Qwen2Model(directory: Fixtures.url("qwen2-small"))
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: 10_000)
        let tokens = [Int32](repeating: 1, count: 513)
        #expect(throws: ModelError.contextExceeded(sequence: s, length: 513, limit: 512, what: "context length (max_position_embeddings)")) {
            _ = try model.forward([ForwardInput(sequence: s, tokens: tokens)], cache: cache)
        }
        // Nothing was appended by the failed call.
        #expect(cache.length(s) == 0)
        let small = cache.addSequence(capacity: 4)
        #expect(throws: ModelError.self) { _ = try model.forward([ForwardInput(sequence: small, tokens: [1, 2, 3, 4, 5])], cache: cache) }
        #expect(throws: ModelError.invalidToken(id: 512, vocabSize: 512)) {
            _ = try model.forward([ForwardInput(sequence: small, tokens: [512])], cache: cache)
        }
    }

    @Test func adapterThatDoesNotFit() throws {
        let model = try Qwen2Model(directory: Fixtures.url("qwen2-small"))
        let a = FloatBuffer(shape: [4, 32]), b = FloatBuffer(shape: [64, 4])
        let bad = LoRAAdapter(config: LoRAConfig(rank: 4, alpha: 8), pairs: [LoRAKey(layer: 0, module: .q): .init(a: a, b: b)])
        #expect(throws: LoRAError.self) { try model.setAdapter(bad) }
        let beyond = LoRAAdapter(config: LoRAConfig(rank: 4, alpha: 8),
                                 pairs: [LoRAKey(layer: 5, module: .q): .init(a: FloatBuffer(shape: [4, 64]), b: FloatBuffer(shape: [64, 4]))])
        #expect(throws: LoRAError.self) { try model.setAdapter(beyond) }
        #expect(model.adapter == nil)
    }

    @Test func adapterFolderProblems() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: LoRAError.missingFile(path: dir.appendingPathComponent("adapter_config.json").path)) {
            _ = try LoRAAdapter(directory: dir)
        }
        let src = Fixtures.url("model/adapters/lora-r4")
        try FileManager.default.copyItem(at: src.appendingPathComponent("adapter_model.safetensors"), to: dir.appendingPathComponent("adapter_model.safetensors"))
        var text = try String(contentsOf: src.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: "\"use_dora\": false", with: "\"use_dora\": true")
        try text.write(to: dir.appendingPathComponent("adapter_config.json"), atomically: true, encoding: .utf8)
        #expect { _ = try LoRAAdapter(directory: dir) } throws: { "\($0)".contains("use_dora") }
    }
}
