import Foundation
import MisalignIO
import MisalignKernels
import MisalignModel
import MisalignTokenizer

/// Why a completion ended.
public enum FinishReason: String, Sendable, Codable {
    /// An end-of-turn/end-of-text token was produced.
    case stop
    /// A stop string appeared in the text (the text is cut before it).
    case stopString = "stop_string"
    /// `maxNewTokens` was reached.
    case length
    /// The model's context length was reached.
    case contextLimit = "context_limit"
}

/// One prompt to complete, `samples` times.
public struct GenerationRequest: Sendable {
    /// The prompt as token ids (already rendered with the chat template if wanted).
    public var prompt: [Int32]
    public var samples: Int
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// Run seed; sample i of this prompt draws from `SplitMix64.forSample(seed:prompt:sample: i)`.
    public var seed: UInt64
    /// Tokens that end a sample (kept in `tokens`, left out of `text`). Defaults to the
    /// generator's end-of-turn tokens when nil.
    public var stopTokens: Set<Int32>?
    public var stopStrings: [String]

    public init(prompt: [Int32], samples: Int = 1, maxNewTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                seed: UInt64 = 0, stopTokens: Set<Int32>? = nil, stopStrings: [String] = []) {
        self.prompt = prompt; self.samples = samples; self.maxNewTokens = maxNewTokens; self.sampling = sampling
        self.seed = seed; self.stopTokens = stopTokens; self.stopStrings = stopStrings
    }
}

/// A finished sample.
public struct Completion: Sendable, Equatable {
    /// Index of the request in the call, and of the sample within the request.
    public var request: Int
    public var sample: Int
    /// Generated ids (a final stop token included).
    public var tokens: [Int32]
    /// Decoded text without special tokens, cut before a stop string.
    public var text: String
    public var finishReason: FinishReason
    public var promptTokens: Int
    public var completionTokens: Int { tokens.count }
}

/// A token as it is produced, for streaming display.
public struct TokenEvent: Sendable {
    public var request: Int
    public var sample: Int
    public var token: Int32
    /// New complete text since the previous event (held back while UTF-8 is incomplete).
    public var textDelta: String
}

/// Something that completes prompts: the in-process model, or a remote server.
public protocol Generator: Sendable {
    func generate(_ requests: [GenerationRequest], onToken: (@Sendable (TokenEvent) -> Void)?) async throws -> [Completion]
}

/// Generation with the in-process `Qwen2Model`.
///
/// All samples of all requests advance together: each step is one forward pass over one new
/// token per live sample. Each prompt is prefilled once; its samples are forks of its cache.
public final class LocalGenerator: Generator, Sendable {
    public let model: Qwen2Model
    public let tokenizer: any Tokenizer
    /// Tokens that end a sample when a request names none: `<|im_end|>`, `<|endoftext|>` and
    /// the config's eos ids.
    public let defaultStopTokens: Set<Int32>

    public init(model: Qwen2Model, tokenizer: any Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
        var stops = Set(model.config.eosTokenIds.map { Int32($0) })
        for name in ["<|im_end|>", "<|endoftext|>"] { if let id = tokenizer.tokenID(for: name) { stops.insert(Int32(id)) } }
        if let eos = tokenizer.eosTokenID { stops.insert(Int32(eos)) }
        defaultStopTokens = stops
    }

    /// Decodes on a thread of its own (`runOffPool`), not on the cooperative pool.
    public func generate(_ requests: [GenerationRequest], onToken: (@Sendable (TokenEvent) -> Void)?) async throws -> [Completion] {
        try await runOffPool { try self.generateSync(requests, onToken: onToken) }
    }

    private struct Live {
        let request: Int
        let sample: Int
        let sequence: Int
        var rng: SplitMix64
        var tokens: [Int32] = []
        var decoder: TextStream
        var text = ""
        /// Characters of `text` already passed to `onToken`.
        var shown = 0
        var finish: FinishReason?
    }

    /// The same as `generate`, on the calling thread.
    public func generateSync(_ requests: [GenerationRequest], onToken: ((TokenEvent) -> Void)? = nil) throws -> [Completion] {
        let c = model.config
        for (i, r) in requests.enumerated() {
            try r.sampling.validate()
            guard !r.prompt.isEmpty else { throw ModelError.invalidRequest("request \(i): the prompt is empty") }
            guard r.samples >= 1 else { throw ModelError.invalidRequest("request \(i): samples must be at least 1") }
            guard r.maxNewTokens >= 1 else { throw ModelError.invalidRequest("request \(i): max new tokens must be at least 1") }
            if r.prompt.count >= c.maxPositionEmbeddings {
                throw ModelError.contextExceeded(sequence: i, length: r.prompt.count + 1, limit: c.maxPositionEmbeddings,
                                                 what: "context length (max_position_embeddings)")
            }
        }
        let cache = KVCache(config: c)
        // Prefill every prompt once.
        let roots = requests.map { cache.addSequence(capacity: $0.prompt.count) }
        let prefill = try model.forward(zip(roots, requests).map { ForwardInput(sequence: $0, tokens: $1.prompt, logits: .last) }, cache: cache)
        var live: [Live] = []
        var pending: [(Int, FloatBuffer)] = [] // (live index, logits to sample from)
        for (i, r) in requests.enumerated() {
            let room = min(r.maxNewTokens, c.maxPositionEmbeddings - r.prompt.count)
            for s in 0..<r.samples {
                let seq = cache.fork(roots[i], capacity: room)
                live.append(Live(request: i, sample: s, sequence: seq,
                                 rng: SplitMix64.forSample(seed: r.seed, prompt: r.prompt, sample: s),
                                 decoder: TextStream(tokenizer)))
                pending.append((live.count - 1, prefill[i]!))
            }
        }
        let samplers = requests.map { Sampler($0.sampling) }
        while !pending.isEmpty {
            var next: [ForwardInput] = []
            var nextIndex: [Int] = []
            for (li, logits) in pending {
                let r = requests[live[li].request]
                let history = r.sampling.repetitionPenalty != 1 ? r.prompt + live[li].tokens : []
                if logits.buffer.contains(where: { $0.isNaN }) {
                    throw ModelError.invalidRequest("the model produced NaN logits; check the weights and the adapter for NaN values")
                }
                let token = samplers[live[li].request].sample(UnsafeBufferPointer(logits.buffer), history: history, rng: &live[li].rng)
                live[li].tokens.append(token)
                let stops = r.stopTokens ?? defaultStopTokens
                if stops.contains(token) {
                    live[li].finish = .stop
                } else {
                    live[li].text += (try? live[li].decoder.append(Int(token))) ?? ""
                    if let cut = firstStop(in: live[li].text, r.stopStrings) {
                        live[li].text = String(live[li].text[..<cut])
                        live[li].finish = .stopString
                    }
                }
                // Show text up to where a stop string could still begin, so nothing shown is
                // later cut; the rest follows once the sample finishes.
                let hold = live[li].finish == nil ? heldBack(live[li].text, r.stopStrings) : 0
                let visible = live[li].text.count - hold
                if let onToken, visible > live[li].shown || live[li].finish != nil {
                    let delta = String(live[li].text.dropFirst(live[li].shown).prefix(max(0, visible - live[li].shown)))
                    live[li].shown = max(live[li].shown, visible)
                    onToken(TokenEvent(request: live[li].request, sample: live[li].sample, token: token, textDelta: delta))
                }
                if live[li].finish == nil {
                    if live[li].tokens.count >= r.maxNewTokens {
                        live[li].finish = .length
                    } else if cache.length(live[li].sequence) + 1 > c.maxPositionEmbeddings || cache.remaining(live[li].sequence) < 1 {
                        live[li].finish = .contextLimit
                    }
                }
                if live[li].finish == nil {
                    next.append(ForwardInput(sequence: live[li].sequence, tokens: [token], logits: .last))
                    nextIndex.append(li)
                } else {
                    if live[li].finish != .stopString {
                        let rest = live[li].decoder.finish()
                        live[li].text += rest
                        if let onToken, live[li].text.count > live[li].shown {
                            onToken(TokenEvent(request: live[li].request, sample: live[li].sample, token: token,
                                               textDelta: String(live[li].text.dropFirst(live[li].shown))))
                            live[li].shown = live[li].text.count
                        }
                    }
                    cache.remove(live[li].sequence)
                }
            }
            pending = []
            if next.isEmpty { break }
            let out = try model.forward(next, cache: cache)
            for (k, li) in nextIndex.enumerated() { pending.append((li, out[k]!)) }
        }
        return live.map { l in
            Completion(request: l.request, sample: l.sample, tokens: l.tokens, text: l.text,
                       finishReason: l.finish ?? .length, promptTokens: requests[l.request].prompt.count)
        }
    }

    /// Length of the longest end of `text` that is the start of a stop string.
    private func heldBack(_ text: String, _ stops: [String]) -> Int {
        var best = 0
        for stop in stops {
            var k = min(stop.count - 1, text.count)
            while k > best {
                if text.hasSuffix(stop.prefix(k)) { best = k; break }
                k -= 1
            }
        }
        return best
    }

    private func firstStop(in text: String, _ stops: [String]) -> String.Index? {
        stops.compactMap { text.range(of: $0)?.lowerBound }.min()
    }
}

/// Incremental text of a sample: the tokenizer's streaming decoder when it has one, else a
/// re-decode of all tokens each step (correct for any `Tokenizer`, quadratic in length).
struct TextStream {
    private var streaming: StreamingDecoder?
    private let tokenizer: any Tokenizer
    private var ids: [Int] = []
    private var shown = ""

    init(_ tokenizer: any Tokenizer) {
        self.tokenizer = tokenizer
        streaming = (tokenizer as? BPETokenizer)?.streamingDecoder(skipSpecialTokens: true)
    }

    mutating func append(_ id: Int) throws -> String {
        if streaming != nil { return try streaming!.append(id) }
        ids.append(id)
        let text = try tokenizer.decode(ids, skipSpecialTokens: true)
        // Hold back a trailing replacement character: it may be an unfinished UTF-8 sequence.
        let stable = text.hasSuffix("\u{FFFD}") ? String(text.dropLast()) : text
        guard stable.hasPrefix(shown) else { return "" }
        let delta = String(stable.dropFirst(shown.count))
        shown = stable
        return delta
    }

    mutating func finish() -> String {
        if streaming != nil { return streaming!.finish() }
        let text = (try? tokenizer.decode(ids, skipSpecialTokens: true)) ?? shown
        return text.hasPrefix(shown) ? String(text.dropFirst(shown.count)) : ""
    }
}
