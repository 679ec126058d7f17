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

/// Per-layer hidden states of the forward pass against transformers' `output_hidden_states`
/// (Tests/Fixtures/activations/make_reference.py, qwen2-small in f32).
@Suite struct HiddenStatesTests {
    static let reference = try! SafeTensorsFile(url: Fixtures.url("activations/reference.safetensors"))
    static let model = try! Qwen2Model(directory: Fixtures.url("qwen2-small"))
    static var all: [Int] { HiddenStateRequest.allLayers(model.config) }
    var H: Int { Self.model.config.hiddenSize }

    func ids(_ name: String) throws -> [Int32] { try Self.reference.tensor(named: name).integers().map { Int32($0) } }

    /// Reference prompt i: its ids and hidden states `[L+1, T, H]`.
    func prompt(_ i: Int) throws -> (ids: [Int32], hidden: [Float]) {
        (try ids("prompt\(i).ids"), try Self.reference.tensor(named: "prompt\(i).hidden").floats())
    }

    /// Reference rows `rows` of hidden state `layer` of a `[L+1, T, H]` array.
    func refRows(_ hidden: [Float], T: Int, layer: Int, _ rows: Range<Int>) -> [Float] {
        Array(hidden[(layer * T + rows.lowerBound) * H ..< (layer * T + rows.upperBound) * H])
    }

    /// Runs inputs through a fresh cache (one sequence per token list).
    func run(_ tokens: [[Int32]], _ requests: [[HiddenStateRequest]]) throws -> ForwardOutput {
        let cache = KVCache(config: Self.model.config)
        let seqs = tokens.map { cache.addSequence(capacity: $0.count) }
        return try Self.model.forwardCapturing(zip(seqs, zip(tokens, requests)).map {
            ForwardInput(sequence: $0, tokens: $1.0, logits: .none, hiddenStates: $1.1)
        }, cache: cache)
    }

    @Test(arguments: 0..<3)
    func everyLayerMatchesTransformers(prompt i: Int) throws {
        let (tokens, hidden) = try prompt(i)
        let T = tokens.count
        let states = try run([tokens], [[.rows(layers: Self.all)]]).hiddenStates[0][0]
        #expect(states.values.shape == [Self.all.count, T, H] && states.count == T && states.firstPosition == 0)
        for l in Self.all {
            expectCloseToScale(try #require(states.state(layer: l)), refRows(hidden, T: T, layer: l, 0..<T), "prompt \(i) hidden state \(l)")
        }
    }

    /// Three prompts in one pass, with different requests each (or none): every capture equals
    /// transformers' and the prompt's capture alone.
    @Test func batchCapturesEqualSingleCaptures() throws {
        let prompts = try (0..<3).map { try prompt($0) }
        let requests: [[HiddenStateRequest]] = [[.rows(layers: [2, 0])], [], [.rows(layers: [1]), .rows(layers: Self.all)]]
        let out = try run(prompts.map(\.ids), requests)
        #expect(out.hiddenStates.map(\.count) == [1, 0, 2])
        for (i, caps) in out.hiddenStates.enumerated() {
            let T = prompts[i].ids.count
            let alone = try run([prompts[i].ids], [[.rows(layers: Self.all)]]).hiddenStates[0][0]
            for cap in caps {
                for l in cap.layers {
                    let got = try #require(cap.state(layer: l))
                    expectCloseToScale(got, refRows(prompts[i].hidden, T: T, layer: l, 0..<T), "batched prompt \(i) state \(l)")
                    // Not bit-identical: OpenBLAS blocks a product differently for other row counts.
                    expectCloseToScale(got, Array(try #require(alone.state(layer: l)).buffer), rel: 1e-6, "prompt \(i) state \(l) batched vs alone")
                }
            }
        }
        #expect(out.hiddenStates[0][0].layers == [2, 0])
    }

    /// A prompt, then its continuation through the KV cache: the continuation's rows are the
    /// full sequence's, and means over positions spanning both passes combine to the full mean.
    @Test func continuationThroughTheCache() throws {
        let (tokens, hidden) = try prompt(1)
        let T = tokens.count, split = 10
        let cache = KVCache(config: Self.model.config)
        let s = cache.addSequence(capacity: T)
        let requests: [HiddenStateRequest] = [.rows(layers: Self.all), .responseMean(layers: Self.all, promptLength: 12),
                                              .mean(layers: Self.all, positions: 5..<13)]
        let first = try Self.model.forwardCapturing([ForwardInput(sequence: s, tokens: Array(tokens[..<split]), logits: .none, hiddenStates: requests)],
                                                    cache: cache).hiddenStates[0]
        let second = try Self.model.forwardCapturing([ForwardInput(sequence: s, tokens: Array(tokens[split...]), logits: .last, hiddenStates: requests)],
                                                     cache: cache).hiddenStates[0]
        #expect(second[0].firstPosition == split && second[0].count == T - split)
        #expect(first[1].count == 0 && second[1].count == 4 && second[1].firstPosition == 12)
        #expect(first[2].count == 5 && second[2].count == 3)
        for l in Self.all {
            expectCloseToScale(try #require(second[0].state(layer: l)), refRows(hidden, T: T, layer: l, split..<T), "continuation state \(l)")
        }
        let response = HiddenStates.combiningMeans([first[1], second[1]])
        let spanning = HiddenStates.combiningMeans([first[2], second[2]])
        #expect(response.count == 4 && response.firstPosition == 12 && spanning.count == 8 && spanning.firstPosition == 5)
        for l in Self.all {
            expectCloseToScale(try #require(response.state(layer: l)), meanRows(refRows(hidden, T: T, layer: l, 12..<T)), "response mean \(l)")
            expectCloseToScale(try #require(spanning.state(layer: l)), meanRows(refRows(hidden, T: T, layer: l, 5..<13)), "mean of 5..<13 at \(l)")
        }
    }

    /// Decoding-style passes, one token each after the prompt, each asking for the response
    /// mean: the parts (the prompt's averaging nothing) combine to the response's mean.
    @Test func responseMeanAcrossDecodingSteps() throws {
        let (tokens, hidden) = try prompt(1)
        let T = tokens.count, p = 8
        let cache = KVCache(config: Self.model.config)
        let s = cache.addSequence(capacity: T)
        let request = HiddenStateRequest.responseMean(layers: Self.all, promptLength: p)
        var parts = try Self.model.forwardCapturing([ForwardInput(sequence: s, tokens: Array(tokens[..<p]), hiddenStates: [request])],
                                                    cache: cache).hiddenStates[0]
        for t in p..<T {
            parts += try Self.model.forwardCapturing([ForwardInput(sequence: s, tokens: [tokens[t]], hiddenStates: [request])], cache: cache).hiddenStates[0]
        }
        #expect(parts.map(\.count) == [0] + [Int](repeating: 1, count: T - p))
        let mean = HiddenStates.combiningMeans(parts)
        #expect(mean.count == T - p && mean.firstPosition == p)
        for l in Self.all {
            expectCloseToScale(try #require(mean.state(layer: l)), meanRows(refRows(hidden, T: T, layer: l, p..<T)), "decoded response mean \(l)")
        }
    }

    /// A mean capture equals the mean of the rows capture of the same pass; the prompt-last
    /// capture is that row exactly.
    @Test func meanCaptureIsTheMeanOfTheRows() throws {
        let (tokens, _) = try prompt(1)
        let caps = try run([tokens], [[.rows(layers: Self.all), .responseMean(layers: Self.all, promptLength: 4),
                                        .promptLast(layers: [1, 2], promptLength: 4)]]).hiddenStates[0]
        #expect(caps[1].count == tokens.count - 4 && caps[1].values.shape == [Self.all.count, H])
        for l in Self.all {
            let rows = Array(try #require(caps[0].state(layer: l)).buffer)
            expectCloseToScale(try #require(caps[1].state(layer: l)), meanRows(Array(rows[(4 * H)...])), rel: 1e-6, "response mean \(l)")
            if l > 0 {
                #expect(Array(try #require(caps[2].state(layer: l)).buffer) == Array(rows[(3 * H)..<(4 * H)]), "prompt last \(l)")
            }
        }
        #expect(caps[2].state(layer: 0) == nil)
    }

    /// Capturing changes nothing else: the logits are those of a pass without requests, and
    /// `forward` of inputs without requests returns what it always did.
    @Test func captureLeavesLogitsAlone() throws {
        let (tokens, _) = try prompt(0)
        func logits(_ req: [HiddenStateRequest]) throws -> [Float] {
            let cache = KVCache(config: Self.model.config)
            let s = cache.addSequence(capacity: tokens.count)
            let out = try Self.model.forwardCapturing([ForwardInput(sequence: s, tokens: tokens, logits: .all, hiddenStates: req)], cache: cache)
            #expect(out.hiddenStates[0].count == req.count)
            return try #require(out.logits[0]).toArray()
        }
        #expect(try logits([]) == logits([.rows(layers: Self.all), .responseMean(layers: [0], promptLength: 2)]))
    }

    @Test func emptyInputsGiveEmptyCaptures() throws {
        let cache = KVCache(config: Self.model.config)
        let s = cache.addSequence(capacity: 4)
        let out = try Self.model.forwardCapturing([ForwardInput(sequence: s, tokens: [], hiddenStates: [.rows(layers: [1]), .mean(layers: [0], positions: 0..<3)])],
                                                  cache: cache)
        #expect(out.logits[0] == nil)
        #expect(out.hiddenStates[0].map(\.count) == [0, 0])
        #expect(out.hiddenStates[0][1].values.toArray() == [Float](repeating: 0, count: H))
    }

    @Test func badRequestsAreRefusedBeforeAnyWork() throws {
        let (tokens, _) = try prompt(2)
        let bad: [(HiddenStateRequest, String)] = [
            (.rows(layers: [3]), "layer 3 is outside 0...2"),
            (.rows(layers: []), "layers is empty"),
            (.rows(layers: [1, 0, 1]), "name a layer twice"),
            (.mean(layers: [0], positions: 4..<4), "non-empty range"),
            (.promptLast(layers: [0], promptLength: 0), "non-empty range"),
        ]
        for (req, words) in bad {
            let cache = KVCache(config: Self.model.config)
            let a = cache.addSequence(capacity: 8), b = cache.addSequence(capacity: 8)
            do {
                _ = try Self.model.forwardCapturing([ForwardInput(sequence: a, tokens: tokens), ForwardInput(sequence: b, tokens: tokens, hiddenStates: [req])],
                                                    cache: cache)
                Issue.record("\(req) was accepted")
            } catch let e as ModelError {
                guard case .invalidRequest(let m) = e else { Issue.record("\(e)"); continue }
                #expect(m.contains("hiddenStates of input 1") && m.contains(words), "\(m)")
            }
            #expect(cache.sequences[a]!.length == 0 && cache.sequences[b]!.length == 0, "the cache was touched")
        }
    }

    /// The column-wise mean of `[rows, H]`, in f64.
    func meanRows(_ rows: [Float]) -> [Float] {
        let n = rows.count / H
        return (0..<H).map { j in Float((0..<n).reduce(0.0) { $0 + Double(rows[$1 * H + j]) } / Double(n)) }
    }
}

/// Every |got - want| <= rel * max|want|: the tolerance of a hidden state, relative to the
/// largest magnitude in it (its entries range over orders of magnitude).
func expectCloseToScale(_ got: TensorView, _ want: [Float], rel: Float = 1e-4, _ label: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    expectCloseToScale(Array(got.buffer), want, rel: rel, label, sourceLocation: sourceLocation)
}

func expectCloseToScale(_ got: [Float], _ want: [Float], rel: Float = 1e-4, _ label: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    guard got.count == want.count, !want.isEmpty else {
        Issue.record("\(label): \(got.count) values, expected \(want.count)", sourceLocation: sourceLocation)
        return
    }
    let scale = want.map(abs).max()!
    let worst = zip(got, want).map { abs($0 - $1) }.max()!
    #expect(scale > 0 && worst <= rel * scale, "\(label): max |diff| \(worst), \(worst / scale) of the scale \(scale)",
            sourceLocation: sourceLocation)
}
