import Foundation
import Testing
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

/// Reading PEFT adapter folders: adapter_config.json must describe the tensors it comes with.
@Suite struct LoRAAdapterLoadingTests {
    /// PEFT's r-4 adapter for qwen2-small (all seven projections of both layers).
    static let source = Fixtures.url("model/adapters/lora-r4")

    /// A copy of the fixture adapter with `edit` applied to its config and `rename` to its
    /// tensor names (nil drops the tensor). The caller removes the folder.
    static func variant(_ edit: (inout JSONObject) -> Void = { _ in }, rename: (String) -> String? = { $0 }) throws -> URL {
        let dir = Fixtures.temporaryDirectory("adapter-variant")
        var config = try JSONValue.parse(Data(contentsOf: source.appendingPathComponent("adapter_config.json"))).objectValue!
        edit(&config)
        try Data(JSONValue.object(config).serialized().utf8).write(to: dir.appendingPathComponent("adapter_config.json"))
        let file = try SafeTensorsFile(url: source.appendingPathComponent("adapter_model.safetensors"))
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        for info in file.tensorInfos {
            guard let name = rename(info.name) else { continue }
            let values = try file.tensor(named: info.name).floats()
            values.withUnsafeBufferPointer { w.add(name, floats: $0, shape: info.shape, dtype: .f32) }
        }
        try w.write(to: dir.appendingPathComponent("adapter_model.safetensors"))
        return dir
    }

    static func loadError(_ dir: URL) -> String? {
        do { _ = try LoRAAdapter(directory: dir); return nil } catch { return "\(error)" }
    }

    @Test func rankMustMatchTheTensors() throws {
        let dir = try Self.variant { $0["r"] = .int(8) }
        defer { try? FileManager.default.removeItem(at: dir) }
        let e = Self.loadError(dir)
        #expect(e?.contains("field \"r\" is 8, but") == true && e?.contains("rank-4 matrices") == true, "\(e ?? "loaded")")
    }

    @Test func anAdapterWithoutTensorsIsRefused() throws {
        let dir = try Self.variant(rename: { _ in nil })
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: LoRAError.noTensors(file: dir.appendingPathComponent("adapter_model.safetensors").path)) {
            _ = try LoRAAdapter(directory: dir)
        }
    }

    @Test func tensorsOutsideTheConfigsLayersOrTargetsAreRefused() throws {
        let layers = try Self.variant { $0["layers_to_transform"] = .array([.int(0)]) }
        defer { try? FileManager.default.removeItem(at: layers) }
        let e1 = Self.loadError(layers)
        #expect(e1?.contains("\"layers_to_transform\" lists [0]") == true && e1?.contains("layers.1.") == true, "\(e1 ?? "loaded")")

        let targets = try Self.variant { $0["target_modules"] = .array([.string("q_proj"), .string("v_proj")]) }
        defer { try? FileManager.default.removeItem(at: targets) }
        let e2 = Self.loadError(targets)
        #expect(e2?.contains("\"target_modules\" lists") == true && e2?.contains("k_proj") == true, "\(e2 ?? "loaded")")

        // Narrower config and tensors that agree load fine.
        let agree = try Self.variant({ $0["layers_to_transform"] = .array([.int(1)]) }, rename: { $0.contains("layers.1.") ? $0 : nil })
        defer { try? FileManager.default.removeItem(at: agree) }
        let a = try LoRAAdapter(directory: agree)
        #expect(a.config.layers == [1] && a.keys.count == 7 && a.keys.allSatisfy { $0.layer == 1 })
    }

    @Test(arguments: [JSONValue.int(-8), .int(0), .double(-0.5)])
    func alphaMustBePositive(alpha: JSONValue) throws {
        let dir = try Self.variant { $0["lora_alpha"] = alpha }
        defer { try? FileManager.default.removeItem(at: dir) }
        let e = Self.loadError(dir)
        #expect(e?.contains("field \"lora_alpha\" is") == true && e?.contains("must be a positive number") == true, "\(e ?? "loaded")")
    }

    /// PEFT's `.lora_A.default.weight` / `.lora_B.default.weight` names (Formats.md promises them).
    @Test func defaultAdapterNameFormLoads() throws {
        let dir = try Self.variant(rename: { $0.replacingOccurrences(of: ".weight", with: ".default.weight") })
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try LoRAAdapter(directory: dir)
        let plain = try LoRAAdapter(directory: Self.source)
        #expect(a.keys == plain.keys && a.keys.count == 14)
        for key in a.keys {
            #expect(a.pairs[key]!.a.toArray() == plain.pairs[key]!.a.toArray() && a.pairs[key]!.b.toArray() == plain.pairs[key]!.b.toArray())
        }
    }

    @Test func stringTargetModules() throws {
        #expect(LoRAAdapter.modules(matching: "all-linear") == LoRAModule.allCases)
        #expect(LoRAAdapter.modules(matching: #".*\.(q|v)_proj"#) == [.q, .v])
        #expect(LoRAAdapter.modules(matching: "q_proj|down_proj") == [.q, .down])
        let dir = try Self.variant { $0["target_modules"] = .string("all-linear") }
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try LoRAAdapter(directory: dir).config.targets == LoRAModule.allCases)
    }
}
