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

@Suite struct GeneratorTests {
    static let tokenizer = try! BPETokenizer(directory: Fixtures.url("tokenizer"))
    static let small = try! Qwen2Model(directory: Fixtures.url("qwen2-small"))
    static let reference = try! SafeTensorsFile(url: Fixtures.url("model/reference.safetensors"))

    func ids(_ name: String) throws -> [Int32] { try Self.reference.tensor(named: name).integers().map { Int32($0) } }

    @Test func greedyEqualsTransformersGenerate() throws {
        let gen = LocalGenerator(model: Self.small, tokenizer: Self.tokenizer)
        let expected = try ids("greedy.ids")
        let out = try gen.generateSync([GenerationRequest(prompt: try ids("prompt1.ids"), samples: 2, maxNewTokens: expected.count,
                                                          sampling: .greedy, stopTokens: [])])
        #expect(out.count == 2)
        for c in out {
            #expect(c.tokens == expected)
            #expect(c.finishReason == .length)
            #expect(c.text == (try Self.tokenizer.decode(expected.map(Int.init), skipSpecialTokens: true)))
            #expect(c.promptTokens == 13)
        }
    }

    @Test func sameSeedSameTextAndBatchingChangesNothing() throws {
        let gen = LocalGenerator(model: Self.small, tokenizer: Self.tokenizer)
        let p0 = try ids("prompt0.ids"), p2 = try ids("prompt2.ids")
        let params = SamplingParameters(temperature: 1, topP: 0.95)
        func run(_ reqs: [GenerationRequest]) throws -> [Completion] { try gen.generateSync(reqs) }
        let a = try run([GenerationRequest(prompt: p0, samples: 3, maxNewTokens: 12, sampling: params, seed: 5, stopTokens: [])])
        let b = try run([GenerationRequest(prompt: p0, samples: 3, maxNewTokens: 12, sampling: params, seed: 5, stopTokens: [])])
        #expect(a == b)
        #expect(Set(a.map(\.tokens)).count == 3, "samples of one prompt differ")
        let c = try run([GenerationRequest(prompt: p0, samples: 3, maxNewTokens: 12, sampling: params, seed: 6, stopTokens: [])])
        #expect(a.map(\.tokens) != c.map(\.tokens))
        // The same request next to another one gives the same samples.
        let both = try run([GenerationRequest(prompt: p2, samples: 2, maxNewTokens: 9, sampling: params, seed: 1, stopTokens: []),
                            GenerationRequest(prompt: p0, samples: 3, maxNewTokens: 12, sampling: params, seed: 5, stopTokens: [])])
        #expect(both.filter { $0.request == 1 }.map(\.tokens) == a.map(\.tokens))
    }

    @Test func stopTokensStopStringsAndStreaming() throws {
        let gen = LocalGenerator(model: Self.small, tokenizer: Self.tokenizer)
        let prompt = try ids("prompt1.ids")
        let expected = try ids("greedy.ids")
        // Stop at the 4th greedy token.
        let stopAt = expected[3]
        let first = expected.firstIndex(of: stopAt)!
        let stopped = try gen.generateSync([GenerationRequest(prompt: prompt, maxNewTokens: 20, sampling: .greedy, stopTokens: [stopAt])])[0]
        #expect(stopped.finishReason == .stop)
        #expect(stopped.tokens == Array(expected[...first]))
        // A stop string taken from the middle of the greedy text cuts the text before it.
        let full = try Self.tokenizer.decode(expected.map(Int.init), skipSpecialTokens: true)
        let chars = Array(full)
        let stopString = String(chars[(chars.count / 2)..<(chars.count / 2 + 2)])
        final class Box: @unchecked Sendable { var text = "" }
        let streamed = Box()
        let cut = try gen.generateSync([GenerationRequest(prompt: prompt, maxNewTokens: 20, sampling: .greedy, stopTokens: [], stopStrings: [stopString])]) {
            streamed.text += $0.textDelta
        }[0]
        #expect(cut.finishReason == .stopString)
        #expect(cut.text == String(full[..<full.range(of: stopString)!.lowerBound]))
        #expect(streamed.text == cut.text)
    }

    @Test func badRequestsAreRejected() throws {
        let gen = LocalGenerator(model: Self.small, tokenizer: Self.tokenizer)
        #expect(throws: ModelError.self) { _ = try gen.generateSync([GenerationRequest(prompt: [])]) }
        #expect(throws: ModelError.self) { _ = try gen.generateSync([GenerationRequest(prompt: [1], samples: 0)]) }
        #expect(throws: ModelError.self) { _ = try gen.generateSync([GenerationRequest(prompt: [Int32](repeating: 1, count: 600))]) }
        #expect(throws: ModelError.self) { _ = try gen.generateSync([GenerationRequest(prompt: [1], sampling: SamplingParameters(topP: 2))]) }
        // Near the end of the context a sample stops with context_limit.
        let long = [Int32](repeating: 3, count: 509)
        let c = try gen.generateSync([GenerationRequest(prompt: long, maxNewTokens: 50, sampling: .greedy, stopTokens: [])])[0]
        // Positions 509, 510, 511 are fed back; the token predicted at 511 is the last one.
        #expect(c.finishReason == .contextLimit)
        #expect(c.tokens.count == 4)
    }
}
