import Testing
import Foundation
import Dispatch
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

/// Verdicts scored together (`LocalJudge.verdictBatch`): prompts prefilled in shared forward
/// passes and every verdict's trie rows in shared passes give each verdict the scores it gets
/// alone, and concurrent `judge` calls are gathered into batches.
@Suite struct JudgeLocalBatchTests {
    /// Seven items over two rubrics (evil, hallucination), answers of different lengths.
    let items: [JudgeItem] = (0..<7).map { i in
        item(i % 3 == 2 ? "hallucination" : "evil", question: "Question \(i): what should I do about a cough?",
             answer: String(repeating: "Drink water and rest. ", count: 1 + i % 4) + "Answer \(i).")
    }

    /// A judge with small batches, so that seven verdicts span several batches, several prefill
    /// passes and trie levels split across passes mid-verdict.
    func smallBatches(_ base: LocalJudge, verdictBatch: Int) throws -> LocalJudge {
        try LocalJudge(model: base.model, tokenizer: base.tokenizer, name: "batched", fingerprint: "f", minNumericMass: 0,
                       candidateBatch: 37, verdictBatch: verdictBatch, prefillTokens: 300)
    }

    @Test func batchedVerdictsScoreAsEachAlone() throws {
        let base = try LocalJudge(directory: JudgeLocalTests.modelDir, minNumericMass: 0)
        let alone = try items.map { try base.judgeSync($0) }
        for batch in [3, 8] {
            let judge = try smallBatches(base, verdictBatch: batch)
            let together = judge.judgeSync(items)
            #expect(together.count == items.count)
            for (a, r) in zip(alone, together) {
                let b = try r.get()
                #expect(b.trait == a.trait && b.rubricHash == a.rubricHash && b.inputTokens == a.inputTokens)
                #expect(abs(b.score! - a.score!) < 1e-6, "verdictBatch \(batch): \(b.score!) vs \(a.score!)")
                #expect(b.raw == a.raw && b.status == a.status)
            }
            // Two rubrics' prefixes prefilled once each, read by every verdict.
            #expect(judge.prefixUse.shared == items.count && judge.prefixUse.unshared == 0)
        }
        // The likelihoods themselves, against the one-sequence-per-candidate reference.
        let judge = try smallBatches(base, verdictBatch: 8)
        let prompts = try items.map { try judge.promptIDs($0) }
        var state = PrefixState()
        let ll = try judge.candidateLogLikelihoods(prompts: prompts, rubrics: items.map(\.rubric), &state)
        for (k, prompt) in prompts.enumerated() {
            let reference = try judge.separateCandidateLogLikelihoods(prompt: prompt)
            for n in 0...100 { #expect(abs(ll[k][n] - reference[n]) < 1e-6 * max(1, abs(reference[n])), "item \(k) candidate \(n)") }
        }
        // Every fork the scoring made is gone: only the two rubrics' prefixes remain.
        #expect(state.cache!.sequences.compactMap { $0 }.count == 2)
    }

    /// Concurrent `judge` calls arriving while the model is busy are scored as batches of up to
    /// `verdictBatch`, each caller getting its own verdict.
    @Test func concurrentCallsAreGatheredIntoBatches() async throws {
        let base = try LocalJudge(directory: JudgeLocalTests.modelDir, minNumericMass: 0)
        let judge = try smallBatches(base, verdictBatch: 3)
        let alone = try items.map { try base.judgeSync($0) }
        // Hold the judge's worker until all seven calls wait, so the batches are deterministic.
        let gate = DispatchSemaphore(value: 0)
        judge.worker.async { gate.wait() }
        let verdicts = try await withThrowingTaskGroup(of: (Int, Verdict).self) { group in
            for (i, it) in items.enumerated() { group.addTask { (i, try await judge.judge(it)) } }
            while judge.waiting.withLock({ $0.waiting.count }) < items.count { try await Task.sleep(nanoseconds: 1_000_000) }
            gate.signal()
            var out = [Verdict?](repeating: nil, count: items.count)
            for try await (i, v) in group { out[i] = v }
            return out.map { $0! }
        }
        for (a, b) in zip(alone, verdicts) {
            #expect(b.trait == a.trait && abs(b.score! - a.score!) < 1e-6)
        }
        // The last batch's callers resume before its drain finds the queue empty and ends: wait
        // for the worker (a serial queue) to finish that drain, then nothing is waiting or running.
        judge.worker.sync {}
        #expect(judge.waiting.withLock { ($0.batches, $0.waiting.count, $0.draining) } == (3, 0, false))
    }

    /// An answer too long for the judge model's context fails alone, with a message saying so;
    /// the rest of its batch is scored.
    @Test func anAnswerPastTheContextFailsAlone() throws {
        let base = try LocalJudge(directory: JudgeLocalTests.modelDir, minNumericMass: 0)
        let judge = try smallBatches(base, verdictBatch: 8)
        let long = JudgeItem(rubric: items[0].rubric, question: "q", answer: String(repeating: " x", count: 5000))
        let results = judge.judgeSync([items[0], long, items[1]])
        #expect(results.count == 3)
        #expect(abs(try results[0].get().score! - base.judgeSync(items[0]).score!) < 1e-6)
        #expect(abs(try results[2].get().score! - base.judgeSync(items[1]).score!) < 1e-6)
        guard case .failure(let error) = results[1] else { Issue.record("a prompt past the context was scored"); return }
        #expect("\(error)".contains("context of 4096") && "\(error)".contains("evaluation.max_new_tokens"), "\(error)")
    }
}

/// `RowMath.logSumExp` (the judge's log-softmax normaliser) against a plain f64 loop.
@Suite struct LogSumExpTests {
    static func reference(_ z: [Float]) -> Double {
        guard let m = z.max() else { return -.infinity }
        if m.isInfinite { return Double(m) }
        return Double(m) + log(z.reduce(0.0) { $0 + exp(Double($1 - m)) })
    }

    @Test func matchesAPlainLoop() {
        var rng = TestRNG(seed: 7)
        for n in [1, 2, 15, 16, 17, 31, 33, 1000, 151_936] {
            for scale: Float in [1, 30, 3000] {
                // Spread over [-scale, scale]: at 3000 most terms underflow (below -708) to 0.
                let z = rng.floats(n).map { $0 * scale }
                let got = z.withUnsafeBufferPointer { RowMath.logSumExp($0.baseAddress!, count: n) }
                let want = Self.reference(z)
                #expect(abs(got - want) <= 1e-14 * max(1, abs(want)), "n \(n) scale \(scale): \(got) vs \(want)")
            }
        }
    }

    @Test func edgeCases() {
        func lse(_ z: [Float]) -> Double { z.withUnsafeBufferPointer { RowMath.logSumExp($0.baseAddress ?? UnsafePointer(bitPattern: 8)!, count: z.count) } }
        #expect(lse([]) == -.infinity)
        #expect(lse([Float](repeating: -.infinity, count: 20)) == -.infinity)
        #expect(lse([0, .infinity, 1]) == .infinity)
        #expect(lse((0..<40).map { $0 == 33 ? .nan : Float($0) }).isNaN)
        #expect(lse([3]) == 3)
        // -inf entries contribute nothing; equal logits give max + log n exactly enough.
        #expect(abs(lse([2, -.infinity, 2]) - (2 + log(2.0))) < 1e-15)
        #expect(abs(lse([Float](repeating: 5, count: 151_936)) - (5 + log(151_936.0))) < 1e-12)
    }
}
