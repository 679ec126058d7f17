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

@Suite struct SamplingTests {
    /// Our chain keeps exactly the tokens transformers' processors keep, with the same logits
    /// (Tests/Fixtures/generation/make_sampler_cases.py).
    @Test func chainMatchesTransformersProcessors() throws {
        let cases = try loadJSON("generation/sampler_cases.json").arrayValue!
        #expect(cases.count == 32)
        for c in cases {
            let p = c["params"]!
            let params = SamplingParameters(temperature: p["temperature"]!.doubleValue!, topK: p["top_k"]!.intValue!,
                                            topP: p["top_p"]!.doubleValue!, minP: p["min_p"]!.doubleValue!,
                                            repetitionPenalty: p["repetition_penalty"]!.doubleValue!)
            let logits = c["logits"]!.arrayValue!.map { Float($0.doubleValue!) }
            let history = c["history"]!.arrayValue!.map { Int32($0.intValue!) }
            var cand = logits.withUnsafeBufferPointer { Candidates(logits: $0) }
            for proc in params.processors { proc.process(&cand, history: history) }
            let expectedIDs = c["kept"]!.arrayValue!.map { Int32($0.intValue!) }
            let expectedLogits = c["kept_logits"]!.arrayValue!.map { Float($0.doubleValue!) }
            let order = cand.ids.indices.sorted { cand.ids[$0] < cand.ids[$1] }
            let name = c["name"]!.stringValue!
            let keptIDs = order.map { cand.ids[$0] }
            if keptIDs != expectedIDs {
                // torch.sort is not stable, so where top-p cuts through a group of exactly equal
                // logits, which members of the group it keeps is arbitrary. Then the sets must
                // still have the same size and differ only inside the tied group at the cut.
                #expect(keptIDs.count == expectedIDs.count, "\(name): kept \(keptIDs.count), expected \(expectedIDs.count)")
                let boundary = cand.logits.min()!
                let diff = Set(keptIDs).symmetricDifference(expectedIDs)
                let processed = Dictionary(uniqueKeysWithValues: zip(cand.ids, cand.logits))
                let expectedProcessed = Dictionary(uniqueKeysWithValues: zip(expectedIDs, expectedLogits))
                #expect(diff.allSatisfy { abs((processed[$0] ?? expectedProcessed[$0]!) - boundary) <= 1e-6 },
                        "\(name): sets differ outside the tie at the boundary")
                #expect(name.hasSuffix("-ties"), "\(name): only the integer-logit cases have ties")
                continue
            }
            if order.count == expectedLogits.count {
                order.map { cand.logits[$0] }.withUnsafeBufferPointer {
                    expectClose($0, expectedLogits, rtol: 1e-6, atol: 1e-6, "\(name): logits")
                }
            }
        }
    }

    @Test func greedyIsTheFirstArgmax() {
        let logits: [Float] = [0, 3, 1, 3, -1]
        var rng = SplitMix64(seed: 1)
        #expect(logits.withUnsafeBufferPointer { Sampler(.greedy).sample($0, history: [], rng: &rng) } == 1)
    }

    @Test func sameSeedSameDrawsAndFrequenciesFollowTheDistribution() {
        let logits: [Float] = [2, 1, 0, -1, 0.5]
        let sampler = Sampler(SamplingParameters(temperature: 1))
        func draws(seed: UInt64, sample: Int, n: Int) -> [Int32] {
            var rng = SplitMix64.forSample(seed: seed, prompt: [1, 2, 3], sample: sample)
            return (0..<n).map { _ in logits.withUnsafeBufferPointer { sampler.sample($0, history: [], rng: &rng) } }
        }
        #expect(draws(seed: 7, sample: 0, n: 50) == draws(seed: 7, sample: 0, n: 50))
        #expect(draws(seed: 7, sample: 0, n: 50) != draws(seed: 7, sample: 1, n: 50))
        #expect(draws(seed: 7, sample: 0, n: 50) != draws(seed: 8, sample: 0, n: 50))
        // Chi-square goodness of fit over 20,000 draws (4 degrees of freedom; 18.5 is p = 0.001).
        let n = 20_000
        let d = draws(seed: 11, sample: 0, n: n)
        let probs = logits.withUnsafeBufferPointer { Candidates(logits: $0) }.probabilities()
        var chi2 = 0.0
        for i in 0..<logits.count {
            let observed = Double(d.filter { $0 == Int32(i) }.count)
            let expected = probs[i] * Double(n)
            chi2 += (observed - expected) * (observed - expected) / expected
        }
        #expect(chi2 < 18.5, "chi-square \(chi2)")
    }

    @Test func parameterRangesAreChecked() {
        #expect(throws: ModelError.self) { try SamplingParameters(temperature: -1).validate() }
        #expect(throws: ModelError.self) { try SamplingParameters(topP: 0).validate() }
        #expect(throws: ModelError.self) { try SamplingParameters(minP: 1).validate() }
        #expect(throws: ModelError.self) { try SamplingParameters(topK: -2).validate() }
        #expect(throws: ModelError.self) { try SamplingParameters(repetitionPenalty: 0).validate() }
        #expect(throws: Never.self) { try SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05).validate() }
    }
}
