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

/// The forward pass against PyTorch/transformers/PEFT (Tests/Fixtures/model/make_reference.py).
@Suite struct ModelForwardTests {
    static let reference = try! SafeTensorsFile(url: Fixtures.url("model/reference.safetensors"))
    static let small = try! Qwen2Model(directory: Fixtures.url("qwen2-small"))

    func ref(_ name: String) throws -> [Float] { try Self.reference.tensor(named: name).floats() }
    func ids(_ name: String) throws -> [Int32] { try Self.reference.tensor(named: name).integers().map { Int32($0) } }

    /// Runs one sequence through a fresh cache and returns all logits.
    func logits(_ model: Qwen2Model, _ tokens: [Int32], observer: Qwen2Model.StateObserver? = nil) throws -> FloatBuffer {
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: tokens.count)
        return try model.forward([ForwardInput(sequence: s, tokens: tokens, logits: .all)], cache: cache, observer: observer)[0]!
    }

    @Test(arguments: 0..<3)
    func hiddenStatesAndLogitsMatchTransformers(prompt: Int) throws {
        let tokens = try ids("prompt\(prompt).ids")
        var states: [String: [Float]] = [:]
        let out = try logits(Self.small, tokens) { name, view in states[name] = Array(view.buffer) }
        expectClose(out, try ref("prompt\(prompt).logits"), "prompt \(prompt) logits")
        for (ours, theirs) in [("embed", "embed"), ("layer.0", "layer0"), ("layer.1", "layer1"), ("final_norm", "final_norm")] {
            let got = try #require(states[ours])
            got.withUnsafeBufferPointer { expectClose($0, (try? ref("prompt\(prompt).\(theirs)")) ?? [], "prompt \(prompt) \(ours)") }
        }
    }

    @Test func batchOfThreeDifferentLengthsGivesEachItsOwnResult() throws {
        let cache = KVCache(config: Self.small.config)
        let prompts = try (0..<3).map { try ids("prompt\($0).ids") }
        let seqs = prompts.map { cache.addSequence(capacity: $0.count) }
        let out = try Self.small.forward(zip(seqs, prompts).map { ForwardInput(sequence: $0, tokens: $1, logits: .all) }, cache: cache)
        for i in 0..<3 {
            expectClose(out[i]!, try ref("prompt\(i).logits"), "batched prompt \(i)")
            // The same as running the prompt alone: rows never interact. (Not bit-identical:
            // OpenBLAS blocks a product differently for a different number of rows.)
            expectClose(out[i]!, try logits(Self.small, prompts[i]).toArray(), rtol: 1e-6, atol: 1e-6, "prompt \(i) alone vs batched")
        }
    }

    /// The head runs once over every requested row, gathered from wherever each input's rows lie:
    /// mixing none, last and all in one batch gives each input exactly its own rows.
    @Test func mixedLogitRequestsInOneBatch() throws {
        let cache = KVCache(config: Self.small.config)
        let prompts = try (0..<3).map { try ids("prompt\($0).ids") } + [try ids("prompt0.ids")]
        let seqs = prompts.map { cache.addSequence(capacity: $0.count) }
        let requests: [LogitsRequest] = [.last, .none, .all, .last]
        let out = try Self.small.forward(zip(seqs, zip(prompts, requests)).map { ForwardInput(sequence: $0, tokens: $1.0, logits: $1.1) }, cache: cache)
        let V = Self.small.config.vocabSize
        for i in 0..<4 {
            let full = try ref("prompt\(i % 3).logits")
            switch requests[i] {
            case .none: #expect(out[i] == nil)
            case .all: expectClose(out[i]!, full, "input \(i) all rows")
            case .last:
                #expect(out[i]!.shape == [1, V])
                expectClose(out[i]!, Array(full[(full.count - V)...]), "input \(i) last row")
            }
        }
    }

    @Test func bf16ShardedUntiedModel() throws {
        let model = try Qwen2Model(directory: Fixtures.url("qwen2-small-bf16-sharded"))
        #expect(model.weights.layers[0].qProj.dtype == .bf16)
        #expect(!model.config.tieWordEmbeddings)
        let mapped = try logits(model, try ids("prompt0.ids"))
        expectClose(mapped, try ref("bf16.prompt0.logits"), "bf16 prompt 0")
        // Weights read into huge pages are the same bytes: the same logits, bit for bit.
        let huge = try Qwen2Model(directory: Fixtures.url("qwen2-small-bf16-sharded"), residency: .hugePages)
        #expect(try logits(huge, try ids("prompt0.ids")).toArray().map(\.bitPattern) == mapped.toArray().map(\.bitPattern))
    }

    @Test(arguments: [("lora-r4", "lora"), ("rslora-r8", "rslora")])
    func peftAdapterApplied(folder: String, key: String) throws {
        let model = try Qwen2Model(directory: Fixtures.url("qwen2-small"))
        let adapter = try LoRAAdapter(directory: Fixtures.url("model/adapters/\(folder)"))
        try model.setAdapter(adapter)
        if key == "rslora" {
            #expect(adapter.config.useRSLoRA && adapter.config.rank == 8 && adapter.keys.count == 2)
            #expect(adapter.keys.allSatisfy { $0.layer == 1 })
        } else {
            #expect(adapter.keys.count == 14)
        }
        let tokens = try ids("prompt1.ids")
        expectClose(try logits(model, tokens), try ref("\(key).prompt1.logits"), "\(folder) prompt 1")
        // Swapping the adapter out restores the base model exactly.
        try model.setAdapter(nil)
        #expect(try logits(model, tokens).toArray() == (try logits(Self.small, tokens)).toArray())
    }

    @Test func mergedAdapterGivesTheSameLogits() throws {
        let adapter = try LoRAAdapter(directory: Fixtures.url("model/adapters/lora-r4"))
        let merged = Qwen2Model(weights: try Self.small.weights.merging(adapter))
        #expect(merged.weights.layers[0].qProj.dtype == .f32)
        expectClose(try logits(merged, try ids("prompt1.ids")), try ref("lora.prompt1.logits"), "merged lora-r4 prompt 1")
        // The base weights are untouched.
        expectClose(try logits(Self.small, try ids("prompt1.ids")), try ref("prompt1.logits"), "base after merging")
        // Applied beside the weights, the adapter runs on the direct kernels up to 32 rows and on
        // sgemm above; both agree with the merged weights, here on a 49-token prompt and while
        // decoding it one token at a time.
        let long = try ids("prompt1.ids") + ids("prompt0.ids") + ids("prompt1.ids") + ids("prompt2.ids") + ids("prompt1.ids")
        let model = try Qwen2Model(directory: Fixtures.url("qwen2-small"))
        try model.setAdapter(adapter)
        let want = try logits(merged, long)
        expectClose(try logits(model, long), want.toArray(), rtol: 1e-5, atol: 1e-5, "adapter beside vs merged, 49 rows")
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: long.count)
        let V = model.config.vocabSize
        _ = try model.forward([ForwardInput(sequence: s, tokens: Array(long[0..<40]), logits: .none)], cache: cache)
        for p in 40..<long.count {
            let l = try model.forward([ForwardInput(sequence: s, tokens: [long[p]])], cache: cache)[0]!
            expectClose(UnsafeBufferPointer(l.buffer), Array(want.buffer[(p * V)..<((p + 1) * V)]), rtol: 1e-5, atol: 1e-5,
                        "adapter decoding at position \(p)")
        }
    }

    @Test func sequenceLongerThan512Tokens() throws {
        var config = try Qwen2Config.load(from: Fixtures.url("qwen2-small"))
        config.maxPositionEmbeddings = 2048
        let model = Qwen2Model(weights: try Qwen2Weights(config: config, source: try ShardedSafeTensors(directory: Fixtures.url("qwen2-small"))))
        let tokens = try ids("long.ids")
        #expect(tokens.count == 600)
        let all = try logits(model, tokens)
        let at = try Self.reference.tensor(named: "long.logits_at").integers()
        let want = try ref("long.logits")
        let V = config.vocabSize
        for (i, p) in at.enumerated() {
            expectClose(UnsafeBufferPointer(start: all.pointer + p * V, count: V), Array(want[(i * V)..<((i + 1) * V)]), "position \(p)")
        }
    }

    @Test func greedyContinuationMatchesGenerate() throws {
        let expected = try ids("greedy.ids")
        #expect(try greedyTokens(Self.small, prompt: try ids("prompt1.ids"), count: expected.count) == expected)
    }

    /// Decoding one token at a time with the cache gives the logits of a full forward, at every position.
    @Test func incrementalDecodeEqualsFullForward() throws {
        for model in [Self.small, try Qwen2Model(directory: Fixtures.url("qwen2-small-bf16-sharded"))] {
            let tokens = try ids("prompt1.ids") + ids("prompt0.ids")
            let full = try logits(model, tokens)
            let V = model.config.vocabSize
            let cache = KVCache(config: model.config)
            let s = cache.addSequence(capacity: tokens.count)
            // A 5-token prefill, then one token at a time.
            let pre = try model.forward([ForwardInput(sequence: s, tokens: Array(tokens[0..<5]), logits: .all)], cache: cache)[0]!
            expectClose(UnsafeBufferPointer(pre.buffer), Array(full.buffer[0..<(5 * V)]), rtol: 1e-5, atol: 1e-5, "prefill")
            for p in 5..<tokens.count {
                let l = try model.forward([ForwardInput(sequence: s, tokens: [tokens[p]])], cache: cache)[0]!
                expectClose(UnsafeBufferPointer(l.buffer), Array(full.buffer[(p * V)..<((p + 1) * V)]), rtol: 1e-5, atol: 1e-5, "position \(p)")
            }
        }
    }

    /// Samples forked from one prompt share its cache and each continue exactly as an unforked run.
    @Test func forkedSequencesShareThePromptCache() throws {
        let model = Self.small
        let prompt = try ids("prompt1.ids")
        let cache = KVCache(config: model.config)
        let root = cache.addSequence(capacity: prompt.count)
        _ = try model.forward([ForwardInput(sequence: root, tokens: prompt, logits: .none)], cache: cache)
        let continuations: [[Int32]] = [[5, 9, 11], [100, 7], [42, 42, 42, 1]]
        let children = continuations.map { _ in cache.fork(root, capacity: 8) }
        // Feed every child its tokens one at a time, all children in each step.
        var outputs = [[Float]](repeating: [], count: children.count)
        for step in 0..<4 {
            let inputs = children.indices.filter { step < continuations[$0].count }
                .map { ForwardInput(sequence: children[$0], tokens: [continuations[$0][step]]) }
            let out = try model.forward(inputs, cache: cache)
            for (inp, l) in zip(inputs, out) { outputs[children.firstIndex(of: inp.sequence)!] = l!.toArray() }
        }
        for (i, cont) in continuations.enumerated() {
            let alone = try logits(model, prompt + cont)
            let V = model.config.vocabSize
            let last = Array(alone.buffer[((prompt.count + cont.count - 1) * V)...])
            outputs[i].withUnsafeBufferPointer { expectClose($0, last, rtol: 1e-5, atol: 1e-5, "child \(i)") }
        }
        #expect(cache.length(children[2]) == prompt.count + 4)
    }
}
