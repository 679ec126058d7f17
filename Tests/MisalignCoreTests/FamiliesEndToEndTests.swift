import Foundation
import Testing
import MisalignCore
@testable import MisalignIO
@testable import MisalignModel
@testable import MisalignPipeline
@testable import MisalignTokenizer
@testable import MisalignJudge

/// Llama 3 and Gemma 2 end to end (Tests/Fixtures/families/make_families.py: tiny random chat
/// models with their families' tokenizers and chat templates): `misalign generate` gives
/// transformers' greedy tokens for a raw prompt and for a chat prompt, the local judge scores
/// its 101 candidates as transformers does, and the whole pipeline (training on chat data
/// through the family's template, generation, judging, detection) runs.
@Suite struct FamiliesEndToEndTests {
    static let reference = try! loadJSON("families/reference.json")

    /// Greedy ids up to and including the first stop id (transformers' `generate` stops there).
    static func expected(_ ids: [Int], eos: [Int]) -> [Int] {
        if let i = ids.firstIndex(where: { eos.contains($0) }) { return Array(ids[...i]) }
        return ids
    }

    @Test(arguments: ["llama", "gemma2"])
    func generateGivesTransformersGreedyTokens(family: String) throws {
        let ref = try #require(Self.reference[family])
        let eos = ref["eos"]!.arrayValue!.map { $0.intValue! }
        let model = Fixtures.url("families/\(family)-chat").path
        for (mode, extra) in [("raw", ["--raw", "--prompt", ref["raw"]!["prompt"]!.stringValue!]), ("chat", ["--prompt", "Hello there!"])] {
            let r = try CLI.run(["generate", "--model", model, "--temperature", "0", "--max-new-tokens", "12", "--json"] + extra)
            #expect(r.status == 0, "\(family) \(mode): \(r.err)")
            let line = try JSONValue.parse(String(r.out.split(separator: "\n").first ?? ""))
            let want = Self.expected(ref[mode]!["greedy"]!.arrayValue!.map { $0.intValue! }, eos: eos)
            let got = line["ids"]?.arrayValue?.map { $0.intValue! } ?? []
            // The stop id itself may or may not be reported; the tokens before it must be identical.
            #expect(Array(got.prefix(want.count)) == want || got == want.filter { !eos.contains($0) }, "\(family) \(mode): \(got) vs \(want)")
            #expect(line["prompt_tokens"]?.intValue == ref[mode]!["prompt_ids"]!.arrayValue!.count, "\(family) \(mode) prompt length")
        }
    }

    /// The local judge through the family's template and end-of-turn token: candidate ids and
    /// their log-likelihoods after a judging prompt, against transformers.
    @Test(arguments: ["llama", "gemma2"])
    func theLocalJudgeScoresCandidatesAsTransformers(family: String) throws {
        let ref = try #require(Self.reference[family]?["judge"])
        let judge = try LocalJudge(directory: Fixtures.url("families/\(family)-chat"), minNumericMass: 0)
        let candidates = ref["candidates"]!.arrayValue!.map { $0.arrayValue!.map { Int32($0.intValue!) } }
        #expect(judge.candidates == candidates)
        let prompt = try judge.tokenizer.applyChatTemplate([ChatMessage(role: "user", content: ref["prompt"]!.stringValue!)],
                                                          addGenerationPrompt: true).ids
        #expect(prompt == ref["prompt_ids"]!.arrayValue!.map { $0.intValue! })
        let got = try judge.candidateLogLikelihoods(prompt: prompt.map { Int32($0) })
        let want = ref["loglik"]!.arrayValue!.map { $0.doubleValue! }
        let worst = zip(got, want).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-4, "\(family): worst |log-likelihood difference| \(worst)")
        print("[\(family)] local judge: worst |log-likelihood difference| \(worst)")
    }

    @Test(arguments: ["llama", "gemma2"])
    func thePipelineRunsOnTheFamily(family: String) async throws {
        let f = try PipelineFixture("pipeline-\(family)", modelFixture: "families/\(family)-chat")
        // Llama 3.1's template puts its 20-token date preamble before every conversation.
        let text = f.config(maxInFlight: 8).replacingOccurrences(of: "max_length: 64", with: "max_length: 128")
        let e = try Experiment.load(from: f.writeConfig(text))
        let summary = try await PipelineRunner(e).run()
        let store = try RunStore(run: e.output, create: false)
        // 2 datasets x 2 seeds, checkpoints 0 (base), 2, 4, 6; 2 questions x 2 samples; 3 traits.
        #expect(try store.count("checkpoints") == 16)
        #expect(try store.count("generations") == 64)
        #expect(try store.count("judgments") == 64 * 3)
        #expect(try store.count("onsets") == 4 * 3 * 3)
        #expect(summary.done["train"] == 24)
        let losses = try store.rows("SELECT loss FROM metrics").compactMap { $0[0].double }
        #expect(losses.count == 24 && losses.allSatisfy { $0.isFinite && $0 > 0 })
        let status = try RunStatus.load(run: e.output)
        #expect(status.complete, "\(status.stages)")
        let again = try await PipelineRunner(e).run()
        #expect(again.nothingToDo)
    }
}
