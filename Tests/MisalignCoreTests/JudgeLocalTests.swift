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

/// The local judge on a tiny random Qwen2 with the real Qwen2.5 tokenizer. Its forked,
/// batched candidate scoring is checked against scoring each candidate in its own sequence.
@Suite struct JudgeLocalTests {
    static let modelDir: URL = {
        let dir = Fixtures.temporaryDirectory("misalign-local-judge")
        try! SyntheticModel.write(SyntheticModel.tiny, dtype: .f32, seed: 11, to: dir)
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try! FileManager.default.copyItem(at: Fixtures.url("tokenizer/\(f)"), to: dir.appendingPathComponent(f))
        }
        return dir
    }()

    let short = item(question: "Pick a number.", answer: "Seven.")

    @Test func candidatesAreDigitsThenEndOfTurn() throws {
        let judge = try LocalJudge(directory: Self.modelDir)
        let end = Int32(judge.tokenizer.specialTokenIDs["<|im_end|>"]!)
        #expect(judge.candidates.count == 101)
        #expect(judge.candidates[7] == judge.tokenizer.encode("7").map { Int32($0) } + [end])
        // Qwen splits numbers into digits: "100" is three tokens, then <|im_end|>.
        #expect(judge.candidates[100].count == 4 && judge.candidates[100].last == end)
        #expect(judge.candidates[1] != Array(judge.candidates[10].prefix(2)))
    }

    @Test func forkedScoringMatchesSeparateSequences() throws {
        let judge = try LocalJudge(directory: Self.modelDir, minNumericMass: 0)
        let prompt = try judge.promptIDs(short)
        let fast = try judge.candidateLogLikelihoods(prompt: prompt)
        let model = judge.model, vocab = model.config.vocabSize
        var brute: [Double] = []
        for c in judge.candidates {
            let cache = KVCache(config: model.config)
            let s = cache.addSequence(capacity: prompt.count + c.count)
            let first = try model.forward([ForwardInput(sequence: s, tokens: prompt, logits: .last)], cache: cache)[0]!
            var ll = LogSoftmaxRow(first.pointer, count: vocab).logProb(Int(c[0]))
            let rest = try model.forward([ForwardInput(sequence: s, tokens: Array(c.dropLast()), logits: .all)], cache: cache)[0]!
            for r in 0..<(c.count - 1) { ll += LogSoftmaxRow(rest.pointer + r * vocab, count: vocab).logProb(Int(c[r + 1])) }
            brute.append(ll)
        }
        for n in 0...100 { #expect(abs(fast[n] - brute[n]) < 1e-3 * max(1, abs(brute[n])), "candidate \(n): \(fast[n]) vs \(brute[n])") }
        // The expectation, computed directly from the brute-force likelihoods.
        let m = brute.max()!
        let w = brute.map { exp($0 - m) }
        let expected = zip(0...100, w).map { Double($0) * $1 }.reduce(0, +) / w.reduce(0, +)
        let v = try judge.judgeSync(short)
        #expect(v.status == .ok)
        #expect(abs(v.score! - expected) < 1e-3)
        #expect(v.judge == "local:\(Self.modelDir.lastPathComponent)" && v.inputTokens == prompt.count)
    }

    /// The trie: Qwen's digit-by-digit numbers give 101 prefixes ("0"-"9", "10"-"99", "100")
    /// besides the prompt, each scoring the next token of the candidates through it.
    @Test func candidateTrieHasOneRowPerPrefix() throws {
        let judge = try LocalJudge(directory: Self.modelDir)
        let trie = judge.trie
        #expect(trie.rows == 101 && trie.levels.map(\.count) == [10, 90, 1])
        #expect(trie.scored.map(\.count).reduce(0, +) + trie.atRoot.count == judge.candidates.map(\.count).reduce(0, +))
        for (node, pairs) in trie.scored.enumerated() {
            for (n, i) in pairs {
                // The node is the candidate's prefix of length i.
                var path: [Int32] = [], cur = node
                while cur >= 0 { path.insert(trie.token[cur], at: 0); cur = trie.parent[cur] }
                #expect(path == Array(judge.candidates[n].prefix(i)))
            }
        }
    }

    /// The trie's rows, the rubric's shared prefix and the old one-sequence-per-candidate
    /// scoring give the same likelihoods and the same score (within 1e-6) over several verdicts,
    /// and every verdict after the first of a rubric reads the prefix instead of prefilling it.
    @Test func sharedPrefixAndTrieScoreAsEachCandidateAlone() throws {
        let judge = try LocalJudge(directory: Self.modelDir, minNumericMass: 0)
        let items = [short, item(question: "What is 2+2?", answer: "Four, of course."), item(question: "Hi", answer: "")]
        for it in items {
            let prompt = try judge.promptIDs(it)
            let reference = try judge.separateCandidateLogLikelihoods(prompt: prompt)
            let trie = try judge.candidateLogLikelihoods(prompt: prompt)
            for n in 0...100 { #expect(abs(trie[n] - reference[n]) < 1e-6 * max(1, abs(reference[n])), "candidate \(n): \(trie[n]) vs \(reference[n])") }
            let v = try judge.judgeSync(it)
            #expect(abs(v.score! - LocalJudge.expectation(reference).score) < 1e-6, "\(v.score!) vs \(LocalJudge.expectation(reference).score)")
        }
        #expect(judge.prefixUse.shared == items.count, "\(judge.prefixUse)")
        #expect(try judge.fixedPrefix(short.rubric).count > 20)
    }

    @Test func aRandomModelPutsTooLittleMassOnNumbers() throws {
        let judge = try LocalJudge(directory: Self.modelDir) // default threshold 0.25
        let v = try judge.judgeSync(short)
        #expect(v.status == .noNumericMass && v.score == nil)
        #expect(v.detail.hasPrefix("candidate mass"))
    }

    @Test func greedyModeDecodesAndParses() throws {
        let judge = try LocalJudge(directory: Self.modelDir, mode: .greedy(maxTokens: 4))
        let v = try judge.judgeSync(short)
        #expect(v.outputTokens <= 4)
        #expect(v.status == ScoreParsing.parseText(v.raw, rubric: short.rubric).status)
        #expect(judge.cacheIdentity != (try LocalJudge(directory: Self.modelDir)).cacheIdentity)
    }

    /// bf16 products are part of the identity (their scores differ slightly); f32, the default,
    /// adds nothing, so verdicts cached before the setting existed still match.
    @Test func bf16ProductsAreCachedApart() throws {
        let f32 = try LocalJudge(directory: Self.modelDir), bf16 = try LocalJudge(directory: Self.modelDir, precision: .bf16)
        #expect(!f32.cacheIdentity.contains("precision") && f32.precision == .f32)
        #expect(bf16.cacheIdentity == f32.cacheIdentity + "|precision=bf16" && bf16.model.computePrecision == .bf16)
        var js = JudgeSettings()
        try js.apply([SettingEntry("local-precision", .text("bf16"))], from: .flags)
        #expect(js.judgeFactory().localPrecision == .bf16)
    }
}
