import Testing
import Foundation
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignTesting

/// Hidden-state means recorded while generating (`GenerationRequest.hiddenStateLayers`)
/// against the same means captured by one forward pass over prompt + response afterwards
/// (itself checked against transformers in HiddenStatesTests), on the 2-layer f32 fixture.
@Suite struct GenerationCaptureTests {
    static let tokenizer = try! BPETokenizer(directory: Fixtures.url("tokenizer"))
    static let model = try! Qwen2Model(directory: Fixtures.url("qwen2-small"))

    static func withLayers(_ layers: [Int]) throws -> [GenerationRequest] {
        try ContinuousBatchingTests.requests().map { var r = $0; r.hiddenStateLayers = layers; return r }
    }

    /// The reference: prompt + every generated token but the last, prefilled whole.
    func reference(_ r: GenerationRequest, _ c: Completion, layers: [Int]) throws -> (promptLast: HiddenStates, response: HiddenStates) {
        let cache = KVCache(config: Self.model.config)
        let read = r.prompt + c.tokens.dropLast()
        let seq = cache.addSequence(capacity: read.count)
        let out = try Self.model.forwardCapturing([ForwardInput(sequence: seq, tokens: read, logits: .none, hiddenStates: [
            .promptLast(layers: layers, promptLength: r.prompt.count), .responseMean(layers: layers, promptLength: r.prompt.count),
        ])], cache: cache)
        return (out.hiddenStates[0][0], out.hiddenStates[0][1])
    }

    @Test(arguments: [1, 3, 64])
    func capturesMatchAForwardPassOverTheAnswer(maxLive: Int) throws {
        let layers = [2, 0, 1]
        let reqs = try Self.withLayers(layers)
        let gen = LocalGenerator(model: Self.model, tokenizer: Self.tokenizer)
        let got = try gen.generateSync(reqs, maxLive: maxLive)
        #expect(got.count == 12)
        for c in got {
            let r = reqs[c.request], label = "request \(c.request) sample \(c.sample) maxLive \(maxLive)"
            let a = try #require(c.activations, "\(label): no activations")
            let want = try reference(r, c, layers: layers)
            #expect(a.layers == layers)
            #expect(a.promptLast.count == 1 && a.promptLast.firstPosition == r.prompt.count - 1, "\(label)")
            #expect(a.responseMean.count == c.tokens.count - 1 && a.responseMean.firstPosition == r.prompt.count, "\(label)")
            #expect(a.responseMean.count == want.response.count)
            for l in layers {
                expectCloseToScale(a.promptLast.state(layer: l)!, Array(want.promptLast.state(layer: l)!.buffer), rel: 1e-5, "\(label) prompt-last layer \(l)")
                if want.response.count > 0 {
                    expectCloseToScale(a.responseMean.state(layer: l)!, Array(want.response.state(layer: l)!.buffer), rel: 1e-5,
                                       "\(label) response mean layer \(l)")
                }
            }
        }
    }

    @Test func recordingLeavesTheSamplesAlone() throws {
        let gen = LocalGenerator(model: Self.model, tokenizer: Self.tokenizer)
        let plain = try gen.generateSync(try ContinuousBatchingTests.requests(), maxLive: 5)
        var captured = try gen.generateSync(try Self.withLayers([1]), maxLive: 5)
        #expect(plain.allSatisfy { $0.activations == nil })
        #expect(captured.allSatisfy { $0.activations != nil })
        for i in captured.indices { captured[i].activations = nil }
        #expect(captured == plain, "tokens, text and finish reasons unchanged by recording")
    }

    @Test func onlyTheRequestsThatAskRecord() throws {
        var reqs = try ContinuousBatchingTests.requests()
        reqs[2].hiddenStateLayers = [2]
        let got = try LocalGenerator(model: Self.model, tokenizer: Self.tokenizer).generateSync(reqs, maxLive: 64)
        #expect(got.filter { $0.activations != nil }.map(\.request) == [2, 2, 2, 2])
    }

    @Test func aSampleEndedByItsFirstTokenHasAnEmptyResponseMean() throws {
        // The first token drawn greedily from prompt 0, made its stop token.
        var r = try ContinuousBatchingTests.requests()[2]
        r.samples = 1; r.hiddenStateLayers = [1]
        let gen = LocalGenerator(model: Self.model, tokenizer: Self.tokenizer)
        let first = try gen.generateSync([r])[0].tokens[0]
        r.stopTokens = [first]
        let c = try gen.generateSync([r])[0]
        #expect(c.tokens == [first] && c.finishReason == .stop)
        let a = try #require(c.activations)
        #expect(a.responseMean.count == 0 && a.promptLast.count == 1)
    }

    @Test func badLayersAreRefusedByName() throws {
        let gen = LocalGenerator(model: Self.model, tokenizer: Self.tokenizer)
        var r = try ContinuousBatchingTests.requests()[0]
        r.hiddenStateLayers = [3]
        #expect { try gen.generateSync([r]) } throws: { "\($0)".contains("hidden-state layer 3 is outside 0...2") }
        r.hiddenStateLayers = [1, 1]
        #expect { try gen.generateSync([r]) } throws: { "\($0)".contains("name a layer twice") }
    }
}
