import Testing
import Foundation
import Synchronization
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

/// `LocalGenerator`'s continuous batching and shared prompt prefix, against one request at a
/// time and against prompts prefilled whole, on the 2-layer f32 fixture model.
@Suite struct ContinuousBatchingTests {
    static let tokenizer = try! BPETokenizer(directory: Fixtures.url("tokenizer"))
    static let small = try! Qwen2Model(directory: Fixtures.url("qwen2-small"))
    static let reference = try! SafeTensorsFile(url: Fixtures.url("model/reference.safetensors"))

    static func ids(_ name: String) throws -> [Int32] { try reference.tensor(named: name).integers().map { Int32($0) } }

    /// Prompts sharing a 13-token start (prompt1), with tails of different lengths, and
    /// requests of different sample counts and lengths: 12 samples in all.
    static func requests() throws -> [GenerationRequest] {
        let head = try ids("prompt1.ids"), p0 = try ids("prompt0.ids"), p2 = try ids("prompt2.ids")
        let params = SamplingParameters(temperature: 1, topP: 0.95)
        return [
            GenerationRequest(prompt: head + p0, samples: 3, maxNewTokens: 17, sampling: params, seed: 5, stopTokens: []),
            GenerationRequest(prompt: head + Array(p2.prefix(3)), samples: 2, maxNewTokens: 4, sampling: params, seed: 5, stopTokens: []),
            GenerationRequest(prompt: head + p2, samples: 4, maxNewTokens: 11, sampling: .greedy, seed: 9, stopTokens: []),
            GenerationRequest(prompt: head + [p0[0]], samples: 1, maxNewTokens: 2, sampling: params, seed: 1, stopTokens: []),
            GenerationRequest(prompt: head + p0 + p2, samples: 2, maxNewTokens: 25, sampling: params, seed: 2, stopTokens: []),
        ]
    }

    @Test func continuousBatchingGivesEachRequestWhatItGetsAlone() throws {
        let gen = LocalGenerator(model: Self.small, tokenizer: Self.tokenizer)
        let reqs = try Self.requests()
        var alone: [Completion] = []
        for (i, r) in reqs.enumerated() {
            for var c in try gen.generateSync([r]) { c.request = i; alone.append(c) }
        }
        #expect(alone.count == 12)
        for maxLive in [1, 3, 5, 64] {
            let batched = try gen.generateSync(reqs, maxLive: maxLive)
            // Same tokens, text and finish reason per (request, sample), in that order. The
            // logits differ by rounding with the batch (module comment of LocalGenerator); on
            // this model no draw lands that close to a boundary.
            #expect(batched == alone, "maxLive \(maxLive)")
        }
        #expect(alone.filter { $0.request == 0 }.map(\.tokens.count) == [17, 17, 17])
        #expect(Set(alone.filter { $0.request == 0 }.map(\.tokens)).count == 3, "samples of one prompt differ")
    }

    @Test func eachRequestIsReportedOnceWithAllItsSamplesAsSoonAsTheyEnd() throws {
        let gen = LocalGenerator(model: Self.small, tokenizer: Self.tokenizer)
        let reqs = try Self.requests()
        var calls: [(Int, [Completion])] = []
        let all = try gen.generateSync(reqs, maxLive: 4, onRequestsDone: { calls += $0.map { ($0.request, $0.completions) } })
        #expect(calls.map(\.0).sorted() == [0, 1, 2, 3, 4])
        for (i, done) in calls {
            #expect(done.map(\.sample) == Array(0..<reqs[i].samples), "request \(i)")
            #expect(done == all.filter { $0.request == i })
        }
        // Request 1 (4 tokens, its second sample admitted as the first ends) is reported while
        // request 0 (17 tokens) still decodes.
        let order = calls.map(\.0)
        #expect(order.firstIndex(of: 1)! < order.firstIndex(of: 0)!)
        // All at once, requests are reported by length: 2, 4, 11, 17, 25 tokens.
        var byLength: [Int] = []
        _ = try gen.generateSync(reqs, maxLive: 12, onRequestsDone: { byLength += $0.map(\.request) })
        #expect(byLength == [3, 1, 2, 0, 4])
        // Requests that end in the same step are reported in one call.
        var together: [[Int]] = []
        _ = try gen.generateSync([reqs[1], reqs[3], reqs[1]], maxLive: 8, onRequestsDone: { together.append($0.map(\.request)) })
        #expect(together == [[1], [0, 2]])
        // An error from the callback ends the call.
        struct Stop: Error {}
        var reported = 0
        #expect(throws: Stop.self) {
            _ = try gen.generateSync(reqs, maxLive: 4, onRequestsDone: { _ in reported += 1; throw Stop() })
        }
        #expect(reported == 1)
    }

    @Test func theAsyncCallReportsThroughItsCallback() async throws {
        let gen: any Generator = LocalGenerator(model: Self.small, tokenizer: Self.tokenizer)
        let reqs = try Self.requests()
        let seen = Mutex<[Int: Int]>([:])
        let all = try await gen.generate(reqs, maxLive: 5, onToken: nil) { finished in
            seen.withLock { for f in finished { $0[f.request, default: 0] += f.completions.count } }
        }
        #expect(seen.withLock { $0 } == [0: 3, 1: 2, 2: 4, 3: 1, 4: 2])
        #expect(all == (try LocalGenerator(model: Self.small, tokenizer: Self.tokenizer).generateSync(reqs)))
    }

    /// A generator without batching of its own gets the protocol's static groups.
    @Test func theDefaultRunsStaticGroupsAndNumbersRequestsAcrossThem() async throws {
        final class Echo: Generator {
            let calls = Mutex<[Int]>([])
            func generate(_ requests: [GenerationRequest], onToken: (@Sendable (TokenEvent) -> Void)?) async throws -> [Completion] {
                calls.withLock { $0.append(requests.count) }
                return requests.enumerated().flatMap { i, r in
                    (0..<r.samples).map { Completion(request: i, sample: $0, tokens: r.prompt, text: "", finishReason: .length, promptTokens: r.prompt.count) }
                }
            }
        }
        let echo = Echo()
        let reqs = (0..<5).map { GenerationRequest(prompt: [Int32($0)], samples: 2) }
        let reported = Mutex<[[Int]]>([])
        let all = try await echo.generate(reqs, maxLive: 4, onToken: nil) { finished in
            for f in finished { #expect(f.completions.map(\.tokens) == [[Int32(f.request)], [Int32(f.request)]]) }
            reported.withLock { $0.append(finished.map(\.request)) }
        }
        #expect(echo.calls.withLock { $0 } == [2, 2, 1])
        #expect(reported.withLock { $0 } == [[0, 1], [2, 3], [4]], "each group reported together")
        #expect(all.map(\.request) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    }

    @Test func sharedPrefixLeavesEveryPromptATokenOfItsOwn() {
        #expect(LocalGenerator.sharedPrefix([[1, 2, 3], [1, 2, 4]]) == 2)
        #expect(LocalGenerator.sharedPrefix([[1, 2], [1, 2, 3]]) == 1)
        #expect(LocalGenerator.sharedPrefix([[1, 2, 3], [1, 2, 3]]) == 2)
        #expect(LocalGenerator.sharedPrefix([[5, 2], [1, 2]]) == 0)
        #expect(LocalGenerator.sharedPrefix([[1, 2, 3]]) == 0)
        #expect(LocalGenerator.sharedPrefix([]) == 0)
    }

    @Test func aSharedPrefixGivesTheLogitsAndTokensOfWholePrompts() throws {
        let model = Self.small
        let reqs = try Self.requests()
        let n = LocalGenerator.sharedPrefix(reqs.map(\.prompt))
        #expect(n == 13)
        // Model level: the prefix prefilled once and forked, then each tail, against each
        // prompt whole. Products of other row counts: equal to rounding.
        let cache = KVCache(config: model.config)
        let root = cache.addSequence(capacity: n)
        _ = try model.forward([ForwardInput(sequence: root, tokens: Array(reqs[0].prompt[..<n]), logits: .none)], cache: cache)
        let forks = reqs.map { cache.fork(root, capacity: $0.prompt.count - n) }
        let shared = try model.forward(zip(forks, reqs).map { ForwardInput(sequence: $0, tokens: Array($1.prompt[n...]), logits: .last) }, cache: cache)
        for (i, r) in reqs.enumerated() {
            let whole = KVCache(config: model.config)
            let s = whole.addSequence(capacity: r.prompt.count)
            let expected = try model.forward([ForwardInput(sequence: s, tokens: r.prompt, logits: .last)], cache: whole)[0]!
            let want = expected.toArray(), got = shared[i]!.toArray()
            let diff = zip(want, got).map { abs($0 - $1) }.max()!
            let scale = want.map(abs).max()!
            #expect(diff <= 1e-5 * max(1, scale), "request \(i): logits differ by \(diff)")
        }
        // Generator level: the same completions with and without the shared prefix.
        let gen = LocalGenerator(model: model, tokenizer: Self.tokenizer)
        #expect(try gen.generateSync(reqs, maxLive: 6, sharePrefix: true) == (try gen.generateSync(reqs, maxLive: 6, sharePrefix: false)))
    }

    /// What the module comment of `LocalGenerator` says about batches: one sequence's logits for
    /// one new token are the same bit for bit whatever other sequences share the step as long as
    /// the step's row count stays in one kernel class (5-24 rows: the register-tiled kernel, for
    /// f32 weights with or without AVX-512), and equal to rounding across classes (measured on
    /// AVX-512: 1-4, 25, 32, 64 and 96 rows differ from 5 by up to 3.6e-7 on logits of about 1;
    /// 40 rows, blocks too empty for the packed kernel, are bit for bit the tiles' result).
    @Test func oneSequencesLogitsAcrossBatchSizes() throws {
        let model = Self.small
        let prompt = try Self.ids("prompt1.ids"), other = try Self.ids("prompt0.ids")
        func logits(batch: Int) throws -> [Float] {
            let cache = KVCache(config: model.config)
            let target = cache.addSequence(capacity: prompt.count + 1)
            _ = try model.forward([ForwardInput(sequence: target, tokens: prompt, logits: .none)], cache: cache)
            var inputs = [ForwardInput(sequence: target, tokens: [7], logits: .last)]
            if batch > 1 {
                let others = (1..<batch).map { _ in cache.addSequence(capacity: other.count + 1) }
                _ = try model.forward(others.map { ForwardInput(sequence: $0, tokens: other, logits: .none) }, cache: cache)
                inputs += others.enumerated().map { ForwardInput(sequence: $1, tokens: [Int32(11 + $0)], logits: .last) }
            }
            return try model.forward(inputs, cache: cache)[0]!.toArray()
        }
        let tiled = try logits(batch: 5)
        for b in [6, 8, 13, 24] { #expect(try logits(batch: b) == tiled, "batch \(b)") }
        let scale = tiled.map(abs).max()!
        for b in [1, 2, 3, 4, 25, 32, 40, 64, 96] {
            let l = try logits(batch: b)
            let diff = zip(l, tiled).map { abs($0 - $1) }.max()!
            #expect(diff <= 1e-5 * max(1, scale), "batch \(b): \(diff)")
        }
    }
}
