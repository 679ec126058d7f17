import CMisalignKernels
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

/// Training with bf16 products (`training.precision: bf16`) against PyTorch + PEFT
/// (Tests/Fixtures/training/make_bf16_training_reference.py on qwen2-small-bf16-sharded):
/// gradients as close to the emulated arithmetic (bf16(x) W^T and bf16(dy) W, f32 sums) as
/// f32 summation allows, and closer to float32 than PyTorch's own bf16 autocast run.
@Suite struct TrainingBF16Tests {
    static let reference = try! SafeTensorsFile(url: Fixtures.url("training/bf16_reference.safetensors"))
    static let meta = try! loadJSON("training/bf16_reference.json")
    static let weights = try! Qwen2Weights(directory: Fixtures.url("qwen2-small-bf16-sharded"))

    /// Parameters of the case's LoRA settings holding its initial A and B.
    static func parameters(_ name: String) throws -> LoRAParameters {
        let config = TrainingGradientTests.loraConfig(meta["cases"]![name]!["lora"]!)
        let p = try LoRAParameters(config: config, model: weights.config)
        let want = try flat(p, name, "init")
        p.values.pointer.update(from: want, count: want.count)
        return p
    }

    /// The reference's `<case>.<stage>.*` LoRA tensors in `p`'s layout.
    static func flat(_ p: LoRAParameters, _ name: String, _ stage: String) throws -> [Float] {
        try TrainingGradientTests.flat(p, name, stage, file: reference)
    }

    static func batches(_ name: String) throws -> [TrainingBatch] { try TrainingGradientTests.batches(name, file: reference) }

    /// The step's mean loss and accumulated gradients with the given arithmetic.
    static func run(_ name: String, precision: ComputePrecision, recompute: Bool = false) throws -> (loss: Double, grads: [Float]) {
        let p = try parameters(name)
        let batches = try batches(name)
        let items = batches.reduce(0) { $0 + $1.targetCount }
        let model = try LoRATrainingModel(weights: weights, parameters: p, maxRows: batches.map(\.rows).max()!,
                                          maxSequence: batches.flatMap(\.lengths).max()!, recompute: recompute, precision: precision)
        var loss = 0.0
        for b in batches { loss += try model.accumulateGradients(b, normalizer: items) }
        return (loss / Double(items), Array(p.grads.buffer))
    }

    /// Largest |a - b| over largest |b|.
    static func distance(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max()! / max(b.map(abs).max()!, 1e-30)
    }

    @Test(arguments: ["all", "accum", "some"])
    func gradientsMatchTheEmulatedArithmeticAndBeatAutocast(name: String) throws {
        let losses = Self.meta["cases"]![name]!["loss"]!
        let (loss, grads) = try Self.run(name, precision: .bf16)
        let p = try Self.parameters(name)
        let emulated = try Self.flat(p, name, "emulated.grad"), f32 = try Self.flat(p, name, "f32.grad")
        let autocast = try Self.flat(p, name, "autocast.grad")
        let wantLoss = losses["emulated"]!.doubleValue!
        #expect(abs(loss - wantLoss) <= 1e-5 * abs(wantLoss), "loss \(loss) vs emulated \(wantLoss)")
        // f32 sums in another order than PyTorch's move a few activations across a bf16
        // rounding boundary (one unit in the last place of bf16, 2^-8 relative), which the
        // gradients feel at about 1e-4 of their scale; the f32 path is within 1e-5.
        let toEmulated = Self.distance(grads, emulated)
        #expect(toEmulated <= 1e-3, "\(name): bf16 gradients vs the emulated reference: \(toEmulated)")
        let ours = Self.distance(grads, f32), theirs = Self.distance(autocast, f32)
        #expect(ours < theirs, "\(name): ours \(ours) vs PyTorch bf16 autocast \(theirs), both against float32")
        print("[training bf16] \(name): loss rel err \(abs(loss - wantLoss) / wantLoss), grads vs emulated \(toEmulated), vs f32: ours \(ours), autocast \(theirs)")
    }

    /// Recomputing layers in the backward reruns the same bf16 forward: the same bits.
    @Test func recomputeGivesTheSameBits() throws {
        let plain = try Self.run("accum", precision: .bf16)
        let again = try Self.run("accum", precision: .bf16, recompute: true)
        #expect(plain.loss == again.loss)
        #expect(plain.grads == again.grads)
    }

    /// The f32 precision on bf16 weights is the f32 path: PyTorch float32's gradients within 1e-4.
    @Test func f32PrecisionMatchesFloat32() throws {
        let (loss, grads) = try Self.run("all", precision: .f32)
        let p = try Self.parameters("all")
        let f32 = try Self.flat(p, "all", "f32.grad")
        let want = Self.meta["cases"]!["all"]!["loss"]!["f32"]!.doubleValue!
        #expect(abs(loss - want) <= 1e-5 * want)
        #expect(Self.distance(grads, f32) <= 1e-4)
    }

    /// `training.precision` is read from every source, refuses unknown values, and is part of the
    /// resume fingerprint only when bf16 (runs from before the setting resume).
    @Test func settingAndFingerprint() throws {
        var o = TrainingOptions()
        #expect(o.settings.precision == .f32)
        let f32Print = o.settings.fingerprint(dataCount: 3, dataDigest: "d")
        #expect(!f32Print.contains("precision"))
        try o.apply([SettingEntry("precision", .text("bf16"))], from: .flags)
        #expect(o.settings.precision == .bf16)
        let bf16Print = o.settings.fingerprint(dataCount: 3, dataDigest: "d")
        #expect(bf16Print.contains("precision=bf16"))
        let diff = o.settings.compare(toFingerprint: f32Print, dataCount: 3, dataDigest: "d")
        #expect(diff?.changes == [SettingChange(name: "precision", checkpoint: "f32", now: "bf16")])
        var bad = TrainingOptions()
        #expect(throws: (any Error).self) { try bad.apply([SettingEntry("precision", .text("fp8"))], from: .flags) }
    }
}
