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

/// Seeded random mutations of a real PEFT adapter_config.json, read with its tensors: every
/// outcome is an adapter whose config agrees with the tensors, or a typed error naming the
/// file; no crash, no hang.
@Suite struct AdapterConfigFuzzTests {
    static let source = Fixtures.url("model/adapters/lora-r4")

    /// Values a mutated field may take: plausible, wrong-typed, out of range and extreme.
    static let values: [JSONValue] = [
        .int(0), .int(-1), .int(4), .int(8), .int(1 << 40), .double(2.5), .double(-0.0), .double(1e308), .null,
        .bool(true), .string(""), .string("q_proj"), .string("all-linear"), .string("(["), .array([]),
        .array([.int(0)]), .array([.int(1), .int(1)]), .array([.string("q_proj")]), .array([.int(-3)]), .object(JSONObject()),
    ]
    static let fields = ["r", "lora_alpha", "use_rslora", "target_modules", "layers_to_transform", "lora_dropout",
                         "peft_type", "bias", "use_dora", "fan_in_fan_out", "rank_pattern", "modules_to_save", "x"]

    @Test func mutatedConfigsLoadConsistentlyOrFailTyped() throws {
        let dir = Fixtures.temporaryDirectory("adapter-fuzz")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Self.source.appendingPathComponent("adapter_model.safetensors"),
                                         to: dir.appendingPathComponent("adapter_model.safetensors"))
        let original = try Data(contentsOf: Self.source.appendingPathComponent("adapter_config.json"))
        let base = try JSONValue.parse(original).objectValue!
        let configURL = dir.appendingPathComponent("adapter_config.json")
        var rng = SplitMix64(seed: 17)
        var loaded = 0, refused = 0
        for round in 0..<400 {
            // One to three fields set to odd values (FuzzTests.adapterConfig damages the bytes).
            var o = base
            for _ in 0..<(1 + rng.below(3)) {
                o[Self.fields[rng.below(Self.fields.count)]] = Self.values[rng.below(Self.values.count)]
            }
            let bytes = Data(JSONValue.object(o).serialized().utf8)
            try bytes.write(to: configURL)
            do {
                let a = try LoRAAdapter(directory: dir)
                loaded += 1
                #expect(a.keys.allSatisfy { a.pairs[$0]!.rank == a.config.rank && a.config.targets.contains($0.module)
                        && (a.config.layers?.contains($0.layer) ?? true) })
                #expect(a.config.alpha > 0 && a.config.alpha.isFinite && a.config.dropout >= 0 && a.config.dropout < 1)
            } catch let e as LoRAError {
                refused += 1
                #expect("\(e)".contains(dir.path), "\(e)")
            } catch let e as ConfigError {
                refused += 1
                #expect("\(e)".contains("adapter_config.json"), "\(e)")
            } catch {
                Issue.record("round \(round): untyped error \(type(of: error)): \(error)")
            }
        }
        #expect(loaded > 10 && refused > 50, "loaded \(loaded), refused \(refused)")
    }
}

