import Foundation
import MisalignKernels
import MisalignModel

/// The tokens still in the running after each processor, with their logits.
public struct Candidates: Sendable {
    public var ids: [Int32]
    public var logits: [Float]
    /// True when `ids` are in descending logit order.
    public var sorted: Bool

    public init(logits: UnsafeBufferPointer<Float>) {
        ids = (0..<Int32(logits.count)).map { $0 }
        self.logits = Array(logits)
        sorted = false
    }

    public var count: Int { ids.count }

    /// Sorts by descending logit, ties by descending id (the order in which Hugging Face's
    /// ascending sort cuts a tie at the top-p boundary: lower ids go first), dropping tokens whose logit is more than 40
    /// below the best: e^-40 = 4e-18 of the best token's probability, a mass no f32 sum over the
    /// vocabulary can register, so every later cut is the same as over the full vocabulary.
    public mutating func sortDescending() {
        if sorted { return }
        let best = logits.max() ?? 0
        let floor = best - 40
        var pairs: [(Float, Int32)] = []
        pairs.reserveCapacity(1024)
        for i in 0..<ids.count where logits[i] >= floor {
            pairs.append((logits[i], ids[i]))
        }
        pairs.sort { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 > $1.1 }
        ids = pairs.map(\.1)
        logits = pairs.map(\.0)
        sorted = true
    }

    /// Softmax probabilities of the current candidates (in f64).
    public func probabilities() -> [Double] {
        guard let m = logits.max(), m.isFinite else { return logits.map { _ in 1 / Double(max(1, logits.count)) } }
        let e = logits.map { Foundation.exp(Double($0 - m)) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    public mutating func keep(first n: Int) {
        ids.removeSubrange(n...)
        logits.removeSubrange(n...)
    }
}

/// One link of the sampling chain (llama.cpp's sampler / mlx's LogitProcessor): narrows or
/// reshapes the candidates. `history` is every token of the sequence so far (prompt included).
public protocol LogitProcessor: Sendable {
    func process(_ c: inout Candidates, history: [Int32])
}

/// CTRL's repetition penalty as Hugging Face applies it: every token already in the sequence
/// has its logit divided by `penalty` when positive, multiplied when negative.
public struct RepetitionPenalty: LogitProcessor {
    public let penalty: Float
    public init(_ penalty: Float) { self.penalty = penalty }
    public func process(_ c: inout Candidates, history: [Int32]) {
        guard penalty != 1 else { return }
        let seen = Set(history)
        if c.sorted {
            for i in c.ids.indices where seen.contains(c.ids[i]) {
                c.logits[i] = c.logits[i] < 0 ? c.logits[i] * penalty : c.logits[i] / penalty
            }
            // Order may have changed; recompute it.
            c.sorted = false
            c.sortDescending()
        } else {
            for t in seen where Int(t) < c.logits.count && c.ids[Int(t)] == t {
                let i = Int(t)
                c.logits[i] = c.logits[i] < 0 ? c.logits[i] * penalty : c.logits[i] / penalty
            }
        }
    }
}

public struct Temperature: LogitProcessor {
    public let value: Float
    public init(_ value: Float) { self.value = value }
    public func process(_ c: inout Candidates, history: [Int32]) {
        guard value != 1 else { return }
        for i in c.logits.indices { c.logits[i] /= value }
    }
}

/// Keeps the k most likely tokens (ties at the boundary kept, as Hugging Face does).
public struct TopK: LogitProcessor {
    public let k: Int
    public init(_ k: Int) { self.k = k }
    public func process(_ c: inout Candidates, history: [Int32]) {
        guard k > 0 else { return }
        c.sortDescending()
        guard k < c.count else { return }
        let threshold = c.logits[k - 1]
        var n = k
        while n < c.count && c.logits[n] >= threshold { n += 1 }
        c.keep(first: n)
    }
}

/// Nucleus sampling (Holtzman et al. 2020): the smallest set of most likely tokens whose
/// probability reaches `p`; at least one token is kept.
public struct TopP: LogitProcessor {
    public let p: Double
    public init(_ p: Double) { self.p = p }
    public func process(_ c: inout Candidates, history: [Int32]) {
        guard p < 1 else { return }
        c.sortDescending()
        let probs = c.probabilities()
        var cumulative = 0.0
        var n = 0
        while n < probs.count {
            cumulative += probs[n]
            n += 1
            if cumulative >= p { break }
        }
        c.keep(first: max(1, n))
    }
}

/// Min-p sampling: drops tokens less likely than `minP` times the most likely one.
public struct MinP: LogitProcessor {
    public let minP: Double
    public init(_ minP: Double) { self.minP = minP }
    public func process(_ c: inout Candidates, history: [Int32]) {
        guard minP > 0 else { return }
        c.sortDescending()
        guard let best = c.logits.first else { return }
        // p_i >= minP * p_max  <=>  logit_i >= logit_max + log(minP)
        let floor = Double(best) + Foundation.log(minP)
        var n = 1
        while n < c.count && Double(c.logits[n]) >= floor { n += 1 }
        c.keep(first: n)
    }
}

/// Settings of the sampling chain. `temperature == 0` means greedy decoding.
public struct SamplingParameters: Equatable, Sendable, Codable {
    public var temperature: Double = 1
    public var topK: Int = 0
    public var topP: Double = 1
    public var minP: Double = 0
    public var repetitionPenalty: Double = 1

    public init(temperature: Double = 1, topK: Int = 0, topP: Double = 1, minP: Double = 0, repetitionPenalty: Double = 1) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.minP = minP
        self.repetitionPenalty = repetitionPenalty
    }

    public static let greedy = SamplingParameters(temperature: 0)

    /// Checks ranges; the message names the parameter.
    public func validate() throws(ModelError) {
        if !(temperature >= 0) { throw ModelError.invalidRequest("temperature must be >= 0 (0 = greedy), got \(temperature)") }
        if topK < 0 { throw ModelError.invalidRequest("top-k must be >= 0 (0 = off), got \(topK)") }
        if !(topP > 0 && topP <= 1) { throw ModelError.invalidRequest("top-p must be in (0, 1], got \(topP)") }
        if !(minP >= 0 && minP < 1) { throw ModelError.invalidRequest("min-p must be in [0, 1), got \(minP)") }
        if !(repetitionPenalty > 0) { throw ModelError.invalidRequest("repetition penalty must be > 0, got \(repetitionPenalty)") }
    }

    /// The chain in Hugging Face's order: repetition penalty, temperature, top-k, top-p, min-p.
    public var processors: [LogitProcessor] {
        var chain: [LogitProcessor] = []
        if repetitionPenalty != 1 { chain.append(RepetitionPenalty(Float(repetitionPenalty))) }
        if temperature > 0 && temperature != 1 { chain.append(Temperature(Float(temperature))) }
        if topK > 0 { chain.append(TopK(topK)) }
        if topP < 1 { chain.append(TopP(topP)) }
        if minP > 0 { chain.append(MinP(minP)) }
        return chain
    }
}

/// Runs the chain over one row of logits and picks a token.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    let chain: [LogitProcessor]
    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        chain = parameters.processors
    }

    public func sample(_ logits: UnsafeBufferPointer<Float>, history: [Int32], rng: inout SplitMix64) -> Int32 {
        if parameters.temperature == 0 && parameters.repetitionPenalty == 1 {
            // Greedy: the first maximum, as torch.argmax returns it.
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        var c = Candidates(logits: logits)
        for p in chain { p.process(&c, history: history) }
        if parameters.temperature == 0 {
            c.sortDescending()
            return c.ids[0]
        }
        let probs = c.probabilities()
        let u = rng.uniform()
        var cumulative = 0.0
        for i in 0..<probs.count {
            cumulative += probs[i]
            if u < cumulative { return c.ids[i] }
        }
        return c.ids[probs.count - 1]
    }
}
