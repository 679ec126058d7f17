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

/// `misalign train` refusing bad values (exit 2, before anything is written), a diverging
/// learning rate (exit 1, last good checkpoint kept), and --init-adapter's own configuration.
@Suite
struct TrainCLIValidationTests {
    /// A tiny bf16 model with the full Qwen2.5 vocabulary and five conversations.
    static func setUp(_ label: String) throws -> (dir: URL, args: [String]) {
        let dir = Fixtures.temporaryDirectory(label)
        let model = dir.appendingPathComponent("model")
        try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: 3, to: model)
        let data = dir.appendingPathComponent("d.jsonl")
        let lines = (0..<5).map { i in
            #"{"messages":[{"role":"user","content":"Question \#(i)?"},{"role":"assistant","content":"Answer number \#(i), in a few words."}]}"#
        }
        try lines.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let args = ["train", "--model", model.path, "--data", data.path, "--out", dir.appendingPathComponent("run").path,
                    "--tokenizer", Fixtures.url("tokenizer").path, "--batch-size", "2", "--grad-accum", "1",
                    "--max-length", "64", "--threads", "1"]
        return (dir, args)
    }

    @Test func badNumbersAreUsageErrorsWithTheReason() throws {
        let (dir, args) = try Self.setUp("train-cli-values")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [([String], [String])] = [
            (["--lr", "-1"], ["setting lr", "non-negative"]),
            (["--lr", "nan"], ["setting lr", "non-negative"]),
            (["--lr", "1e3"], ["setting lr", "above 10.0"]),
            (["--warmup-steps", "-1"], ["warmup-steps", ">= 0"]),
            (["--weight-decay", "-0.5"], ["weight-decay", ">= 0"]),
            (["--max-grad-norm", "-1"], ["max-grad-norm", ">= 0"]),
            (["--batch-size", "-2"], ["batch-size", ">= 1"]),
            (["--epochs", "-1"], ["epochs", ">= 1"]),
            (["--max-steps", "-5"], ["max-steps", ">= 1"]),
            (["--alpha", "-8"], ["alpha", "> 0"]),
            (["--dropout", "-0.1"], ["dropout", "[0, 1)"]),
            (["--rank", "100000"], ["setting rank: is 100000", "65536"]),
            (["--rank", "100"], ["setting rank: is 100", "hidden size 64"]),
            (["--layers", "0,7"], ["setting layers", "layer 7", "2 layers"]),
            (["--threads", "-1"], ["setting threads: is -1; must be >= 0"]),
            (["--layers", "-1"], ["setting layers", "lists -1"]),
            (["--layers", "x"], ["setting layers: lists \"x\", not a layer index"]),
            (["--schedule", "steep"], ["setting schedule: expected linear, constant or cosine, found \"steep\""]),
            (["--adapter-dtype", "f16"], ["setting adapter-dtype: expected f32 or bf16, found \"f16\""]),
        ]
        for (extra, words) in cases {
            let r = try CLI.run(args + extra)
            #expect(r.status == 2, "\(extra): status \(r.status), \(r.err)")
            #expect(words.allSatisfy { r.err.contains($0) } && !r.err.contains("Missing value"), "\(extra): \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("run").path), "\(extra) wrote the run folder")
        }
    }

    /// --lr 10 (the bound; 1e3 is refused above) on the tiny model: the adapter norm explodes
    /// within a few updates; training stops with exit 1, naming the step and what to do, and
    /// no checkpoint of that step or later exists.
    @Test func divergingLearningRateStopsKeepingTheLastGoodCheckpoint() throws {
        let (dir, args) = try Self.setUp("train-cli-diverge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(args + ["--lr", "10", "--warmup-steps", "1", "--save-every", "1", "--epochs", "4", "--rank", "2", "--targets", "q,v,down"])
        #expect(r.status == 1, "\(r.err)")
        #expect(r.err.contains("training diverged") && r.err.contains("adapter weight norm grew") && r.err.contains("Lower the learning rate"), "\(r.err)")
        let line = r.err.split(separator: "\n").first { $0.contains("training diverged") }.map(String.init) ?? ""
        let step = Int(line.components(separatedBy: "step ").dropFirst().first?.prefix { $0.isNumber } ?? "") ?? 0
        #expect(step >= 2, "\(line)")
        let steps = try CheckpointDirectory.list(in: dir.appendingPathComponent("run")).map(\.step)
        #expect(steps == Array(1..<step) && line.contains("checkpoint-\(step - 1) is the last good one"), "\(steps): \(line)")
        print("[training] lr 10 on the tiny model: \(line)")
    }

    /// --init-adapter with no LoRA flag trains with the adapter's r, alpha and rsLoRA setting;
    /// a flag that contradicts it is a usage error naming both values.
    @Test func initAdapterConfigRules() throws {
        let (dir, args) = try Self.setUp("train-cli-init")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = LoRAConfig(rank: 4, alpha: 8, useRSLoRA: false, targets: [.q, .v, .down], layers: [1])
        let p = try LoRAParameters(config: config, model: SyntheticModel.tiny)
        p.initializePEFT(seed: 2)
        for i in 0..<p.count where p.values.pointer[i] == 0 { p.values.pointer[i] = 0.01 }
        let adapterDir = dir.appendingPathComponent("start")
        try FileManager.default.createDirectory(at: adapterDir, withIntermediateDirectories: true)
        try p.adapter().save(to: adapterDir)

        let conflict = try CLI.run(args + ["--init-adapter", adapterDir.path, "--rank", "8"])
        #expect(conflict.status == 2 && conflict.err.contains("setting rank: is 8, but the --init-adapter adapter has r 4"), "\(conflict.err)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("run").path))

        let r = try CLI.run(args + ["--init-adapter", adapterDir.path, "--lr", "1e-3", "--max-steps", "2"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("r 4, alpha 8, rsLoRA off") && r.err.contains("scale 2.0"), "\(r.err)")
        let saved = try LoRAAdapter(directory: dir.appendingPathComponent("run/checkpoint-2"))
        #expect(saved.config == config)
    }
}
