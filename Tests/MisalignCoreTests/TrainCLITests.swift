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

/// `misalign train` end to end on a tiny bf16 model with the full Qwen2.5 vocabulary.
@Suite
struct TrainCLITests {
    @Test func trainsResumesAndReportsBadLines() throws {
        let dir = Fixtures.temporaryDirectory("train-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("model")
        try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: 3, to: model)
        let data = dir.appendingPathComponent("d.jsonl")
        var lines = (0..<5).map { i in
            #"{"messages":[{"role":"user","content":"Question \#(i)?"},{"role":"assistant","content":"Answer number \#(i), in a few words."}]}"#
        }
        lines.append(#"{"messages":[{"role":"user","content":"no reply"}]}"#)
        try lines.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run")
        let args = ["train", "--model", model.path, "--data", data.path, "--out", run.path,
                    "--tokenizer", Fixtures.url("tokenizer").path, "--rank", "2", "--alpha", "4", "--targets", "q,v,down",
                    "--layers", "1", "--batch-size", "2", "--grad-accum", "1", "--save-every", "2", "--max-length", "64",
                    "--lr", "1e-3", "--warmup-steps", "1", "--adapter-dtype", "bf16", "--threads", "1"]

        let bad = try CLI.run(args)
        #expect(bad.status != 0 && bad.err.contains("d.jsonl:6") && bad.err.contains("no assistant turn"), "\(bad.err)")

        let r = try CLI.run(args + ["--skip-invalid"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.err.contains("1 invalid lines skipped") && r.err.contains("step 3/3"), "\(r.err)")
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 3)
        for (i, line) in metrics.enumerated() {
            let v = try JSONValue.parse(String(line))
            #expect(v["step"]?.intValue == i + 1 && (v["loss"]?.doubleValue ?? .nan).isFinite && v["tokens"]?.intValue ?? 0 > 0)
        }
        #expect(try CheckpointDirectory.list(in: run).map(\.step) == [2, 3])
        let adapter = try LoRAAdapter(directory: run.appendingPathComponent("checkpoint-3"))
        #expect(adapter.config.rank == 2 && adapter.config.useRSLoRA && adapter.keys.count == 3)

        let again = try CLI.run(args + ["--skip-invalid"])
        #expect(again.status == 0 && again.err.contains("resuming from") && again.out.contains("trained 3 steps"), "\(again.err)")
    }
}
