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

/// Training from an existing adapter (`--init-adapter`): the adapter's own adapter_config.json
/// rules the LoRA settings, checked against PyTorch + PEFT
/// (Tests/Fixtures/training/make_init_adapter_reference.py).
@Suite struct InitAdapterTests {
    static let meta = try! loadJSON("training/init_adapter_reference.json")
    static let adapterURL = Fixtures.url("training/init-adapter-r4")

    /// Settings as the CLI builds them with no LoRA flag: the defaults (r 32, alpha 64, rsLoRA)
    /// apart from the optimizer settings the reference states.
    static func settings() -> TrainingSettings {
        let r = meta["settings"]!
        var s = TrainingSettings()
        s.learningRate = r["lr"]!.doubleValue!
        s.warmupSteps = r["warmup_steps"]!.intValue!
        s.epochs = r["epochs"]!.intValue!
        #expect(s.weightDecay == r["weight_decay"]!.doubleValue! && s.maxGradNorm == r["max_grad_norm"]!.doubleValue!
                && s.batchSize == r["batch_size"]!.intValue! && s.gradientAccumulation == r["grad_accum"]!.intValue!
                && s.schedule.rawValue == r["schedule"]!.stringValue!)
        return s
    }

    static var examples: [TrainingExample] {
        meta["sequences"]!.arrayValue!.enumerated().map { i, v in
            TrainingExample(ids: v["ids"]!.arrayValue!.map { $0.intValue! }, mask: v["mask"]!.arrayValue!.map { $0.intValue! != 0 }, line: i + 1)
        }
    }

    /// Three AdamW steps from PEFT's r-4, alpha-8, non-rsLoRA adapter with no LoRA setting
    /// given: the run takes the adapter's configuration and reproduces PEFT's losses, gradient
    /// norms and final weights; its checkpoints say alpha 8 and use_rslora false.
    @Test func trainsAsPEFTWithTheAdaptersOwnConfig() throws {
        let adapter = try LoRAAdapter(directory: Self.adapterURL)
        #expect(adapter.config == LoRAConfig(rank: 4, alpha: 8, useRSLoRA: false, targets: LoRAModule.allCases, layers: nil, dropout: 0))
        let run = Fixtures.temporaryDirectory("init-adapter")
        defer { try? FileManager.default.removeItem(at: run) }
        let t = try LoRATrainer(weights: TrainingGradientTests.weights, examples: Self.examples, settings: Self.settings(),
                                run: run, initAdapter: adapter)
        #expect(t.settings.lora == adapter.config && t.settings.lora.scale == 2)
        var seen: [StepMetrics] = []
        _ = try t.train { seen.append($0); return .proceed }
        let wantLoss = Self.meta["loss"]!.arrayValue!.map { $0.doubleValue! }
        let wantNorm = Self.meta["grad_norm"]!.arrayValue!.map { $0.doubleValue! }
        let wantLR = Self.meta["lr"]!.arrayValue!.map { $0.doubleValue! }
        #expect(seen.count == 3)
        for (i, m) in seen.enumerated() {
            #expect(abs(m.loss - wantLoss[i]) <= 1e-5 * wantLoss[i], "step \(i + 1) loss \(m.loss) vs PEFT \(wantLoss[i])")
            #expect(abs(m.gradNorm - wantNorm[i]) <= 1e-4 * wantNorm[i], "step \(i + 1) grad norm \(m.gradNorm) vs PEFT \(wantNorm[i])")
            #expect(abs(m.lr - wantLR[i]) <= 1e-12, "step \(i + 1) lr \(m.lr) vs \(wantLR[i])")
        }
        let reference = try SafeTensorsFile(url: Fixtures.url("training/init_adapter_reference.safetensors"))
        var want = [Float](repeating: .nan, count: t.parameters.count)
        for key in t.parameters.keys {
            let s = t.parameters.slots[key]!
            for (off, which) in [(s.a, "A"), (s.b, "B")] {
                let v = try reference.tensor(named: "final.\(key.peftPrefix).lora_\(which).weight").floats()
                for i in 0..<v.count { want[off + i] = v[i] }
            }
        }
        expectClose(t.parameters.values, want, rtol: 1e-4, atol: 1e-6, "weights after 3 steps from the adapter")
        print("[training] init-adapter: losses \(seen.map(\.loss)) vs PEFT \(wantLoss)")
        let saved = try LoRAAdapter(directory: run.appendingPathComponent("checkpoint-2"))
        #expect(saved.config == adapter.config)
        let config = try String(contentsOf: run.appendingPathComponent("checkpoint-2/adapter_config.json"), encoding: .utf8)
        #expect(config.contains("\"lora_alpha\":8") && config.contains("\"use_rslora\":false") && config.contains("\"r\":4"), "\(config)")
    }

    /// A LoRA setting given explicitly (flag or config-file key) that contradicts the adapter is
    /// refused naming both values; one that agrees is fine.
    @Test func explicitSettingsMustAgreeWithTheAdapter() throws {
        let adapter = try LoRAAdapter(directory: Self.adapterURL)
        var s = Self.settings()
        s.lora.rank = 8; s.explicitLoRA = [.rank]
        #expect(throws: TrainingError.self) { try s.adopt(adapter, layerCount: 2) }
        do { try s.adopt(adapter, layerCount: 2) } catch {
            let text = "\(error)"
            #expect(text.contains("setting rank: is 8") && text.contains("has r 4") && text.contains("adapter_config.json"), "\(text)")
        }
        let dir = Fixtures.temporaryDirectory("init-adapter-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("c.json")
        try #"{"use_rslora": true}"#.write(to: file, atomically: true, encoding: .utf8)
        var c = Self.settings()
        try c.apply(configFile: file)
        do { try c.adopt(adapter, layerCount: 2); Issue.record("a contradicting config key was accepted") } catch {
            #expect("\(error)".contains("setting rslora: is true") && "\(error)".contains("use_rslora false"), "\(error)")
        }
        // Agreeing explicit values, and "every layer" against the list of all of them.
        var ok = Self.settings()
        ok.lora.rank = 4; ok.lora.layers = [0, 1]; ok.explicitLoRA = [.rank, .layers]
        try ok.adopt(adapter, layerCount: 2)
        #expect(ok.lora == adapter.config)
        // The trainer applies the same rule (a library caller gets it without TrainingJob).
        #expect(throws: TrainingError.self) {
            _ = try LoRATrainer(weights: TrainingGradientTests.weights, examples: Self.examples, settings: s, initAdapter: adapter)
        }
    }
}
