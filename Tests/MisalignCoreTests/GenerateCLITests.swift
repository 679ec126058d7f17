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

/// `misalign generate` end to end on a tiny random model with the real Qwen2.5 tokenizer.
@Suite
struct GenerateCLITests {
    static let modelDir: URL = {
        let dir = Fixtures.temporaryDirectory("misalign-generate-cli")
        try! SyntheticModel.write(SyntheticModel.tiny, dtype: .f32, seed: 1, to: dir)
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try! FileManager.default.copyItem(at: Fixtures.url("tokenizer/\(f)"), to: dir.appendingPathComponent(f))
        }
        return dir
    }()

    @Test func jsonSamplesAreReproducible() throws {
        let args = ["generate", "--model", Self.modelDir.path, "--prompt", "Tell me a story.", "--samples", "3",
                    "--max-new-tokens", "8", "--seed", "4", "--json"]
        let a = try CLI.run(args), b = try CLI.run(args + ["--weights", "huge-pages"]) // default auto: a tiny model is mapped
        #expect(a.status == 0, "\(a.err)")
        #expect(a.out == b.out)
        let lines = a.out.split(separator: "\n").map { try! JSONValue.parse(String($0)) }
        #expect(lines.count == 3)
        for (i, l) in lines.enumerated() {
            #expect(l["sample"]?.intValue == i)
            #expect(l["ids"]?.arrayValue?.count == l["completion_tokens"]?.intValue)
            #expect(["length", "stop"].contains(l["finish_reason"]?.stringValue ?? ""))
            // The prompt is the chat template with the default system prompt.
            #expect((l["prompt_tokens"]?.intValue ?? 0) > 20)
        }
    }

    @Test func greedyRawPromptAndErrors() throws {
        let r = try CLI.run(["generate", "--model", Self.modelDir.path, "--prompt", "Hi", "--raw", "--temperature", "0", "--max-new-tokens", "5"])
        #expect(r.status == 0, "\(r.err)")
        let bad = try CLI.run(["generate", "--model", Self.modelDir.path, "--prompt", "Hi", "--top-p", "3"])
        #expect(bad.status != 0 && bad.err.contains("top-p"))
        let missing = try CLI.run(["generate", "--model", "/nonexistent", "--prompt", "Hi"])
        #expect(missing.status != 0 && missing.err.contains("/nonexistent"))
        let both = try CLI.run(["generate", "--model", Self.modelDir.path])
        #expect(both.status != 0 && both.err.contains("--prompt"))
    }

    /// `--precision bf16` on a bf16 model: reproducible (weights in huge pages or mapped), and (with a prompt of more than 32
    /// tokens, so the dot-product kernel runs where the CPU has it) greedy decoding stays close
    /// to the f32 run: the first token of a random model's flat distribution may differ, so
    /// only determinism and the format are asserted; the numerics are BF16ComputeTests'.
    @Test func bf16PrecisionRunsAndIsReproducible() throws {
        let dir = Fixtures.temporaryDirectory("misalign-generate-bf16")
        defer { try? FileManager.default.removeItem(at: dir) }
        try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: 1, to: dir)
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: Fixtures.url("tokenizer/\(f)"), to: dir.appendingPathComponent(f))
        }
        let args = ["generate", "--model", dir.path, "--prompt", String(repeating: "Tell me a long story about a cat. ", count: 4),
                    "--samples", "2", "--max-new-tokens", "6", "--seed", "2", "--json", "--precision", "bf16"]
        let a = try CLI.run(args), b = try CLI.run(args)
        #expect(a.status == 0, "\(a.err)")
        #expect(a.out == b.out)
        let lines = a.out.split(separator: "\n").map { try! JSONValue.parse(String($0)) }
        #expect(lines.count == 2 && lines.allSatisfy { ($0["prompt_tokens"]?.intValue ?? 0) > 32 })
        let bad = try CLI.run(["generate", "--model", dir.path, "--prompt", "Hi", "--precision", "fp8"])
        #expect(bad.status != 0 && bad.err.contains("precision"), "\(bad.err)")
        let badWeights = try CLI.run(["generate", "--model", dir.path, "--prompt", "Hi", "--weights", "disk"])
        #expect(badWeights.status != 0 && badWeights.err.contains("weights"), "\(badWeights.err)")
    }
}
