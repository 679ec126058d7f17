import Foundation
import MisalignIO
import MisalignKernels
import MisalignModel
import MisalignTokenizer

/// Generation with the in-process `Qwen2Model`, by continuous batching.
///
/// Up to `maxLive` samples decode together, each step one forward pass over one new token per
/// live sample. When a sample ends, the next one waiting takes its place: the next sample of a
/// request already prefilled, or the first of the next request, whose prompt is then prefilled
/// (all prompts reached in one step in one forward pass) and whose samples are forks of its
/// cache. The prompts' longest common prefix (the chat template and system prompt) is prefilled
/// once for the call and every prompt forks from it.
///
/// A sample draws from its own generator (`SplitMix64.forSample`), so which samples share a
/// step does not change what it draws from. What it draws can still change with the batch in
/// rare cases: the products' kernels differ with the number of rows (a sequential stream for
/// 1, 2 and 3-4 rows, register tiles from 5, the packed kernel from 25 rows of f32 weights or
/// 65 of bf16 where the CPU has AVX-512; `LinearWeight`), each summing in its own order, so one
/// sequence's logits agree across batch sizes to rounding (about 1e-6 relative), not bit for bit,
/// and a draw that falls within that of a boundary between two tokens can go either way. The
/// static groups before (every sample of a group at once) had the same property as samples ended.
public final class LocalGenerator: Generator, Sendable {
    public let model: Qwen2Model
    public let tokenizer: any Tokenizer
    /// Tokens that end a sample when a request names none: the end-of-turn and end-of-text
    /// tokens of each chat family the tokenizer has (`<|im_end|>`, `<|endoftext|>`; Llama 3
    /// `<|eot_id|>`, `<|end_of_text|>`; Gemma `<end_of_turn>`, `<eos>`), the tokenizer's eos and
    /// the config's eos ids.
    public let defaultStopTokens: Set<Int32>

    /// Token texts that stop generation whenever the tokenizer has them.
    static let stopTokenNames = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<eos>"]

    public init(model: Qwen2Model, tokenizer: any Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
        var stops = Set(model.config.eosTokenIds.map { Int32($0) })
        for name in Self.stopTokenNames { if let id = tokenizer.tokenID(for: name) { stops.insert(Int32(id)) } }
        if let eos = tokenizer.eosTokenID { stops.insert(Int32(eos)) }
        defaultStopTokens = stops
    }

    /// Decodes on a thread of its own (`runOffPool`), not on the cooperative pool.
    public func generate(_ requests: [GenerationRequest], onToken: (@Sendable (TokenEvent) -> Void)?) async throws -> [Completion] {
        try await runOffPool { try self.generateSync(requests, onToken: onToken) }
    }

    /// Continuous batching (`generateSync(_:maxLive:...)`) on a thread of its own.
    public func generate(_ requests: [GenerationRequest], maxLive: Int, onToken: (@Sendable (TokenEvent) -> Void)?,
                         onRequestsDone: @escaping @Sendable (FinishedRequests) throws -> Void) async throws -> [Completion] {
        try await runOffPool { try self.generateSync(requests, maxLive: maxLive, onToken: onToken, onRequestsDone: onRequestsDone) }
    }

    /// Every sample of every request at once, on the calling thread.
    public func generateSync(_ requests: [GenerationRequest], onToken: ((TokenEvent) -> Void)? = nil) throws -> [Completion] {
        try generateSync(requests, maxLive: .max, onToken: onToken)
    }

    /// At most `maxLive` samples decoding at once (one request's samples may start at different
    /// steps), on the calling thread. `onRequestsDone` gets the requests whose last sample ended
    /// in a step, after that step (an error it throws ends the call); the result holds
    /// every completion, by request and sample. `sharePrefix: false` prefills every prompt
    /// whole (for comparisons).
    public func generateSync(_ requests: [GenerationRequest], maxLive: Int, sharePrefix: Bool = true,
                             onToken: ((TokenEvent) -> Void)? = nil,
                             onRequestsDone: ((FinishedRequests) throws -> Void)? = nil) throws -> [Completion] {
        try validate(requests)
        var run = Batch(generator: self, requests: requests, cache: KVCache(config: model.config), limit: max(1, maxLive),
                        onToken: onToken, onRequestsDone: onRequestsDone)
        if sharePrefix { try run.prefillSharedPrefix() }
        while true {
            try run.admit()
            if run.live.isEmpty { break }
            try run.step()
        }
        return run.results.sorted { ($0.request, $0.sample) < ($1.request, $1.sample) }
    }

    private func validate(_ requests: [GenerationRequest]) throws {
        let c = model.config
        for (i, r) in requests.enumerated() {
            try r.sampling.validate()
            guard !r.prompt.isEmpty else { throw ModelError.invalidRequest("request \(i): the prompt is empty") }
            guard r.samples >= 1 else { throw ModelError.invalidRequest("request \(i): samples must be at least 1") }
            guard r.maxNewTokens >= 1 else { throw ModelError.invalidRequest("request \(i): max new tokens must be at least 1") }
            let top = c.numHiddenLayers
            if let l = r.hiddenStateLayers.first(where: { $0 < 0 || $0 > top }) {
                throw ModelError.invalidRequest("request \(i): hidden-state layer \(l) is outside 0...\(top) (0 is the embedding output, \(top) the final norm's output)")
            }
            if Set(r.hiddenStateLayers).count != r.hiddenStateLayers.count {
                throw ModelError.invalidRequest("request \(i): hiddenStateLayers \(r.hiddenStateLayers) name a layer twice")
            }
            if r.prompt.count >= c.maxPositionEmbeddings {
                throw ModelError.contextExceeded(sequence: i, length: r.prompt.count + 1, limit: c.maxPositionEmbeddings,
                                                 what: "context length (max_position_embeddings)")
            }
        }
    }

    /// Tokens at the start of every prompt, leaving each at least one token of its own (whose
    /// logits its first token is drawn from); 0 for fewer than two prompts.
    package static func sharedPrefix(_ prompts: [[Int32]]) -> Int {
        guard prompts.count > 1, var n = prompts.map(\.count).min() else { return 0 }
        n -= 1
        let first = prompts[0]
        for p in prompts.dropFirst() {
            var k = 0
            while k < n && p[k] == first[k] { k += 1 }
            n = k
        }
        return n
    }

    /// One sample being decoded.
    struct Live {
        let request: Int
        let sample: Int
        let sequence: Int
        var rng: SplitMix64
        /// The logits its next token is drawn from.
        var logits: FloatBuffer
        var tokens: [Int32] = []
        var decoder: TextStream
        var text = ""
        /// Characters of `text` already passed to `onToken`.
        var shown = 0
        var finish: FinishReason?
        /// The request's prompt-last capture and the running response mean (when it asks for
        /// hidden states).
        var promptLast: HiddenStates?
        var response: HiddenStateMean?
    }

    /// The state of one `generateSync` call.
    struct Batch {
        let generator: LocalGenerator
        let requests: [GenerationRequest]
        let cache: KVCache
        let limit: Int
        let onToken: ((TokenEvent) -> Void)?
        let onRequestsDone: ((FinishedRequests) throws -> Void)?
        let samplers: [Sampler]
        /// The shared prefix's sequence and length (nil, 0 when prompts are prefilled whole).
        var prefix: (sequence: Int, length: Int)?
        /// The next sample to start.
        var nextRequest = 0, nextSample = 0
        /// Prefilled prompts whose samples have not all started: their sequence, last logits and
        /// (when asked for) the prompt's last hidden states.
        var roots: [Int: (sequence: Int, logits: FloatBuffer, promptLast: HiddenStates?)] = [:]
        /// Samples of each request not yet finished, and the finished ones.
        var open: [Int]
        var done: [[Completion]]
        var live: [Live] = []
        var results: [Completion] = []

        init(generator: LocalGenerator, requests: [GenerationRequest], cache: KVCache, limit: Int,
             onToken: ((TokenEvent) -> Void)?, onRequestsDone: ((FinishedRequests) throws -> Void)?) {
            self.generator = generator; self.requests = requests; self.cache = cache; self.limit = limit
            self.onToken = onToken; self.onRequestsDone = onRequestsDone
            samplers = requests.map { Sampler($0.sampling) }
            open = requests.map(\.samples)
            done = requests.map { _ in [] }
        }

        var model: Qwen2Model { generator.model }

        mutating func prefillSharedPrefix() throws {
            let n = LocalGenerator.sharedPrefix(requests.map(\.prompt))
            guard n > 0 else { return }
            let root = cache.addSequence(capacity: n)
            _ = try model.forward([ForwardInput(sequence: root, tokens: Array(requests[0].prompt[..<n]), logits: .none)], cache: cache)
            prefix = (root, n)
        }

        /// Starts waiting samples in the free slots, prefilling the prompts reached for the first
        /// time together.
        mutating func admit() throws {
            let free = limit - live.count
            guard free > 0, nextRequest < requests.count else { return }
            var starts: [(request: Int, sample: Int)] = []
            while starts.count < free && nextRequest < requests.count {
                starts.append((nextRequest, nextSample))
                nextSample += 1
                if nextSample == requests[nextRequest].samples { nextRequest += 1; nextSample = 0 }
            }
            var newRequests: [Int] = []
            for s in starts where roots[s.request] == nil && newRequests.last != s.request { newRequests.append(s.request) }
            if !newRequests.isEmpty {
                let skip = prefix?.length ?? 0
                let inputs = newRequests.map { i in
                    let r = requests[i], p = r.prompt
                    let seq = prefix.map { cache.fork($0.sequence, capacity: p.count - skip) } ?? cache.addSequence(capacity: p.count)
                    let states = r.hiddenStateLayers.isEmpty ? [] : [HiddenStateRequest.promptLast(layers: r.hiddenStateLayers, promptLength: p.count)]
                    return ForwardInput(sequence: seq, tokens: Array(p[skip...]), logits: .last, hiddenStates: states)
                }
                let out = try pass(inputs)
                for (k, i) in newRequests.enumerated() { roots[i] = (inputs[k].sequence, out.logits[k]!, out.hiddenStates[k].first) }
            }
            let c = model.config
            for (i, s) in starts {
                let r = requests[i], root = roots[i]!
                let room = min(r.maxNewTokens, c.maxPositionEmbeddings - r.prompt.count)
                live.append(Live(request: i, sample: s, sequence: cache.fork(root.sequence, capacity: room),
                                 rng: SplitMix64.forSample(seed: r.seed, prompt: r.prompt, sample: s), logits: root.logits,
                                 decoder: TextStream(generator.tokenizer), promptLast: root.promptLast,
                                 response: root.promptLast.map { HiddenStateMean(layers: $0.layers, hidden: $0.hidden) }))
                if s == r.samples - 1 {
                    cache.remove(root.sequence)  // its samples keep the positions they read
                    roots[i] = nil
                }
            }
        }

        /// One token for every live sample; the ones that go on take one forward pass together.
        /// Requests whose last sample ended are reported before that pass.
        mutating func step() throws {
            var next: [ForwardInput] = []
            var going: [Live] = []
            var finished: FinishedRequests = []
            for var l in live {
                let token = try draw(&l)
                if l.finish == nil {
                    let layers = requests[l.request].hiddenStateLayers
                    let states = layers.isEmpty ? [] : [HiddenStateRequest.responseMean(layers: layers, promptLength: requests[l.request].prompt.count)]
                    next.append(ForwardInput(sequence: l.sequence, tokens: [token], logits: .last, hiddenStates: states))
                    going.append(l)
                } else {
                    cache.remove(l.sequence)
                    if let all = finish(l) { finished.append((l.request, all)) }
                }
            }
            live = going
            if !finished.isEmpty { try onRequestsDone?(finished) }
            guard !next.isEmpty else { return }
            let out = try pass(next)
            for k in live.indices {
                live[k].logits = out.logits[k]!
                if let h = out.hiddenStates[k].first { live[k].response!.add(h) }
            }
        }

        /// One forward pass; hidden states are captured only when some input asks for them.
        private func pass(_ inputs: [ForwardInput]) throws -> (logits: [FloatBuffer?], hiddenStates: [[HiddenStates]]) {
            if inputs.allSatisfy({ $0.hiddenStates.isEmpty }) {
                return (try model.forward(inputs, cache: cache), inputs.map { _ in [] })
            }
            let out = try model.forwardCapturing(inputs, cache: cache)
            return (out.logits, out.hiddenStates)
        }

        /// Records a finished sample; returns its request's completions, by sample, when it was
        /// the request's last.
        private mutating func finish(_ l: Live) -> [Completion]? {
            var c = Completion(request: l.request, sample: l.sample, tokens: l.tokens, text: l.text,
                               finishReason: l.finish ?? .length, promptTokens: requests[l.request].prompt.count)
            if let p = l.promptLast, let m = l.response { c.activations = SampleActivations(promptLast: p, responseMean: m.result()) }
            results.append(c)
            done[l.request].append(c)
            open[l.request] -= 1
            guard open[l.request] == 0 else { return nil }
            defer { done[l.request] = [] }
            return done[l.request].sorted { $0.sample < $1.sample }
        }

        /// Draws `l`'s next token from its logits and updates its text and finish reason.
        private func draw(_ l: inout Live) throws -> Int32 {
            let r = requests[l.request], c = model.config
            let history = r.sampling.repetitionPenalty != 1 ? r.prompt + l.tokens : []
            if l.logits.buffer.contains(where: { $0.isNaN }) {
                throw ModelError.invalidRequest("the model produced NaN logits; check the weights and the adapter for NaN values")
            }
            let token = samplers[l.request].sample(UnsafeBufferPointer(l.logits.buffer), history: history, rng: &l.rng)
            l.tokens.append(token)
            if (r.stopTokens ?? generator.defaultStopTokens).contains(token) {
                l.finish = .stop
            } else {
                l.text += (try? l.decoder.append(Int(token))) ?? ""
                if let cut = LocalGenerator.firstStop(in: l.text, r.stopStrings) {
                    l.text = String(l.text[..<cut])
                    l.finish = .stopString
                }
            }
            // Show text up to where a stop string could still begin, so nothing shown is
            // later cut; the rest follows once the sample finishes.
            let hold = l.finish == nil ? LocalGenerator.heldBack(l.text, r.stopStrings) : 0
            let visible = l.text.count - hold
            if let onToken, visible > l.shown || l.finish != nil {
                let delta = String(l.text.dropFirst(l.shown).prefix(max(0, visible - l.shown)))
                l.shown = max(l.shown, visible)
                onToken(TokenEvent(request: l.request, sample: l.sample, token: token, textDelta: delta))
            }
            if l.finish == nil {
                if l.tokens.count >= r.maxNewTokens {
                    l.finish = .length
                } else if cache.length(l.sequence) + 1 > c.maxPositionEmbeddings || cache.remaining(l.sequence) < 1 {
                    l.finish = .contextLimit
                }
            }
            if let f = l.finish, f != .stopString {
                l.text += l.decoder.finish()
                if let onToken, l.text.count > l.shown {
                    onToken(TokenEvent(request: l.request, sample: l.sample, token: token, textDelta: String(l.text.dropFirst(l.shown))))
                    l.shown = l.text.count
                }
            }
            return token
        }
    }

    /// Length of the longest end of `text` that is the start of a stop string.
    static func heldBack(_ text: String, _ stops: [String]) -> Int {
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

    static func firstStop(in text: String, _ stops: [String]) -> String.Index? {
        stops.compactMap { text.range(of: $0)?.lowerBound }.min()
    }
}
