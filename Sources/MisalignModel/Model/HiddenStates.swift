import Foundation
import MisalignKernels

/// Hidden states a forward pass keeps for one input (`ForwardInput.hiddenStates`).
///
/// Layers are numbered as transformers numbers `output_hidden_states` for Qwen2
/// (`numHiddenLayers + 1` entries): 0 is the embedding output (the input of layer 0), `i` for
/// `0 < i < numHiddenLayers` the output of decoder layer `i - 1` (the residual stream), and
/// `numHiddenLayers` the output of the last layer after the final norm (`model.norm`), not
/// the last layer's raw output.
public struct HiddenStateRequest: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Every row of the input's new tokens: `[layers.count, tokens, hidden]`.
        case rows
        /// The mean of the rows at these positions of the sequence (positions as the cache
        /// counts them: 0 is the sequence's first token), over the part of them this input
        /// holds: `[layers.count, hidden]`. No per-token copies are kept.
        case mean(positions: Range<Int>)
    }

    /// Hidden-state indices in `0...numHiddenLayers`, each at most once, in the order the
    /// result lists them.
    public var layers: [Int]
    public var kind: Kind

    public init(layers: [Int], kind: Kind) { self.layers = layers; self.kind = kind }

    public static func rows(layers: [Int]) -> HiddenStateRequest { HiddenStateRequest(layers: layers, kind: .rows) }

    public static func mean(layers: [Int], positions: Range<Int>) -> HiddenStateRequest {
        HiddenStateRequest(layers: layers, kind: .mean(positions: positions))
    }

    /// The mean over an answer's response tokens, every position from `promptLength` on
    /// (persona_vectors' `hidden_states[l][:, prompt_len:].mean(1)`).
    public static func responseMean(layers: [Int], promptLength: Int) -> HiddenStateRequest {
        mean(layers: layers, positions: promptLength..<Int.max)
    }

    /// The prompt's last token (persona_vectors' `hidden_states[l][:, prompt_len - 1]`).
    public static func promptLast(layers: [Int], promptLength: Int) -> HiddenStateRequest {
        mean(layers: layers, positions: (promptLength - 1)..<promptLength)
    }

    /// Every hidden-state index of a model, `0...numHiddenLayers`.
    public static func allLayers(_ config: Qwen2Config) -> [Int] { Array(0...config.numHiddenLayers) }

    /// Throws `ModelError.invalidRequest` naming the input and the offending value.
    func validate(input: Int, config: Qwen2Config) throws(ModelError) {
        let top = config.numHiddenLayers
        let what = "hiddenStates of input \(input)"
        guard !layers.isEmpty else { throw ModelError.invalidRequest("\(what): layers is empty; name at least one hidden-state index (0...\(top))") }
        for l in layers where l < 0 || l > top {
            throw ModelError.invalidRequest("\(what): layer \(l) is outside 0...\(top) (0 is the embedding output, \(top) the final norm's output)")
        }
        guard Set(layers).count == layers.count else { throw ModelError.invalidRequest("\(what): layers \(layers) name a layer twice") }
        if case .mean(let p) = kind, p.lowerBound < 0 || p.isEmpty {
            throw ModelError.invalidRequest("\(what): mean positions \(p) must be a non-empty range of positions from 0")
        }
    }
}

/// What one `HiddenStateRequest` captured for one input.
public struct HiddenStates: Sendable {
    /// The hidden-state indices, in the request's order.
    public let layers: [Int]
    public let kind: HiddenStateRequest.Kind
    /// `.rows`: `[layers.count, count, hidden]`; `.mean`: `[layers.count, hidden]`, zeros when
    /// `count` is 0.
    public let values: FloatBuffer
    /// The rows captured (`.rows`) or averaged (`.mean`).
    public let count: Int
    /// The position of the first of them in the sequence.
    public let firstPosition: Int

    public var hidden: Int { values.shape.last ?? 0 }

    /// The state at hidden-state index `layer`: `[count, hidden]` rows, or the `[1, hidden]` mean.
    /// Nil when the request did not name that layer.
    public func state(layer: Int) -> TensorView? {
        guard let slot = layers.firstIndex(of: layer) else { return nil }
        let rows = kind == .rows ? count : 1
        return TensorView(values.pointer + slot * rows * hidden, shape: [rows, hidden])
    }

    /// The mean over several parts of one sequence (a prompt then its continuation, decoding
    /// steps), each weighted by its `count`; the parts must be means of the same layers.
    public static func combiningMeans(_ parts: [HiddenStates]) -> HiddenStates {
        precondition(!parts.isEmpty, "no parts to combine")
        var acc = HiddenStateMean(layers: parts[0].layers, hidden: parts[0].hidden)
        for p in parts { acc.add(p) }
        return acc.result()
    }
}

/// A running mean of mean captures of one sequence (decoding steps, each capturing its one new
/// token), summed in f64 and weighted by each part's `count`; no per-part copies are kept.
public struct HiddenStateMean: Sendable {
    public let layers: [Int]
    public let hidden: Int
    private var sum: [Double]
    /// Rows averaged so far.
    public private(set) var count = 0
    private var first = Int.max, lower = Int.max, upper = Int.min

    public init(layers: [Int], hidden: Int) {
        self.layers = layers; self.hidden = hidden
        sum = [Double](repeating: 0, count: layers.count * hidden)
    }

    /// Adds a mean capture of the same layers and hidden size.
    public mutating func add(_ p: HiddenStates) {
        guard case .mean(let r) = p.kind else { preconditionFailure("HiddenStateMean takes mean captures") }
        precondition(p.layers == layers && p.hidden == hidden, "parts of different layers or hidden sizes")
        lower = min(lower, r.lowerBound); upper = max(upper, r.upperBound)
        guard p.count > 0 else { return }
        let w = Double(p.count), v = p.values.pointer, n = sum.count
        sum.withUnsafeMutableBufferPointer { s in for i in 0..<n { s[i] += w * Double(v[i]) } }
        count += p.count; first = min(first, p.firstPosition)
    }

    /// The mean so far: `[layers.count, hidden]`, zeros when no rows were added; its positions
    /// span every part's.
    public func result() -> HiddenStates {
        let out = FloatBuffer(shape: [layers.count, hidden], zeroed: true)
        if count > 0 { for i in 0..<sum.count { out.pointer[i] = Float(sum[i] / Double(count)) } }
        let span = lower <= upper ? lower..<upper : 0..<0
        return HiddenStates(layers: layers, kind: .mean(positions: span), values: out, count: count,
                            firstPosition: count > 0 ? first : span.lowerBound)
    }
}

/// What `Qwen2Model.forwardCapturing` returns: the logits `forward` returns, and per input the
/// hidden states of each of its requests, in order.
public struct ForwardOutput: Sendable {
    public let logits: [FloatBuffer?]
    public let hiddenStates: [[HiddenStates]]
}

/// Collects the requested hidden states during one forward pass. It exists only when some
/// input asked for hidden states, so a pass without requests allocates nothing for them.
struct HiddenStateCollector {
    /// One request of one input, with its destination.
    private struct Target {
        let input: Int
        let request: HiddenStateRequest
        /// hidden-state index -> slot in `request.layers`, -1 when not requested.
        let slot: [Int]
        /// Where the input's rows start in the pass's stacked rows, how many it has, and the
        /// part of them a mean averages (all of them for `.rows`).
        let rowStart: Int, rows: Int, lo: Int, hi: Int
        let firstPosition: Int
        let values: FloatBuffer
        /// f64 sums of a mean capture, `[layers.count * hidden]`; empty for `.rows`.
        var sums: [Double]
    }

    private var targets: [Target] = []
    /// Whether any target wants hidden-state index i.
    private var wanted: [Bool]
    private let hidden: Int
    private let inputCount: Int

    /// Nil when no input asks for hidden states. `firstPosition[i]`: the cache position of
    /// input i's first new token; `rowStart[i]`: where its rows start in the stacked rows.
    init?(inputs: [ForwardInput], rowStart: [Int], firstPosition: [Int], config: Qwen2Config) throws(ModelError) {
        guard inputs.contains(where: { !$0.hiddenStates.isEmpty }) else { return nil }
        let H = config.hiddenSize, top = config.numHiddenLayers
        hidden = H
        inputCount = inputs.count
        wanted = [Bool](repeating: false, count: top + 1)
        for (i, inp) in inputs.enumerated() {
            let T = inp.tokens.count
            for req in inp.hiddenStates {
                try req.validate(input: i, config: config)
                var slot = [Int](repeating: -1, count: top + 1)
                for (s, l) in req.layers.enumerated() { slot[l] = s; wanted[l] = true }
                switch req.kind {
                case .rows:
                    targets.append(Target(input: i, request: req, slot: slot, rowStart: rowStart[i], rows: T, lo: 0, hi: T,
                                          firstPosition: firstPosition[i],
                                          values: FloatBuffer(shape: [req.layers.count, T, H], zeroed: false), sums: []))
                case .mean(let p):
                    // The requested positions this input holds (it holds firstPosition ..< firstPosition + T).
                    let lo = min(max(p.lowerBound - firstPosition[i], 0), T)
                    let hi = max(min(p.upperBound - firstPosition[i], T), lo)
                    targets.append(Target(input: i, request: req, slot: slot, rowStart: rowStart[i], rows: T, lo: lo, hi: hi,
                                          firstPosition: firstPosition[i] + lo,
                                          values: FloatBuffer(shape: [req.layers.count, H], zeroed: false),
                                          sums: [Double](repeating: 0, count: req.layers.count * H)))
                }
            }
        }
    }

    /// Records hidden-state index `index` from the pass's `[rows, hidden]` state: copies the
    /// rows of `.rows` targets, adds the averaged rows of `.mean` targets to their sums.
    mutating func record(index: Int, state: UnsafePointer<Float>) {
        guard wanted[index] else { return }
        let H = hidden
        for k in targets.indices {
            let s = targets[k].slot[index]
            guard s >= 0 else { continue }
            // Scalars first: holding a copy of the target would make the sums' update copy them.
            let rowStart = targets[k].rowStart, rows = targets[k].rows, lo = targets[k].lo, hi = targets[k].hi
            if case .rows = targets[k].request.kind {
                (targets[k].values.pointer + s * rows * H).update(from: state + rowStart * H, count: rows * H)
                continue
            }
            targets[k].sums.withUnsafeMutableBufferPointer { sums in
                let acc = sums.baseAddress! + s * H
                for r in lo..<hi {
                    let row = state + (rowStart + r) * H
                    for j in 0..<H { acc[j] += Double(row[j]) }
                }
            }
        }
    }

    /// The captures, per input and request in the inputs' order.
    func results() -> [[HiddenStates]] {
        var out = [[HiddenStates]](repeating: [], count: inputCount)
        for t in targets {
            var count = t.rows
            if case .mean = t.request.kind {
                count = t.hi - t.lo
                let inv = count > 0 ? 1 / Double(count) : 0
                t.sums.withUnsafeBufferPointer { sums in
                    for j in 0..<sums.count { t.values.pointer[j] = Float(sums[j] * inv) }
                }
            }
            out[t.input].append(HiddenStates(layers: t.request.layers, kind: t.request.kind, values: t.values, count: count,
                                             firstPosition: t.firstPosition))
        }
        return out
    }

    /// The captures of a pass with no new tokens: every one empty.
    static func empty(inputs: [ForwardInput], firstPosition: [Int], config: Qwen2Config) throws(ModelError) -> [[HiddenStates]]? {
        try HiddenStateCollector(inputs: inputs, rowStart: inputs.map { _ in 0 }, firstPosition: firstPosition, config: config)?.results()
    }
}
