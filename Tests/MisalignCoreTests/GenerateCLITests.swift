import Testing
import Foundation
@testable import MisalignCore

/// `misalign generate` end to end on a tiny random model with the real Qwen2.5 tokenizer.
@Suite(.enabled(if: CLI.binary != nil, "the misalign executable is not built (run `make test`)"))
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
        let a = try CLI.run(args), b = try CLI.run(args)
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
}
