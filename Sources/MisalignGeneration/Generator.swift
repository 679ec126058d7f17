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
    /// Hidden-state indices (transformers' `output_hidden_states` numbering, 0...layers) whose
    /// prompt-last row and response mean each sample records (`Completion.activations`); none
    /// by default. Only the in-process generator records them; a remote one leaves them nil.
    public var hiddenStateLayers: [Int]

    public init(prompt: [Int32], samples: Int = 1, maxNewTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                seed: UInt64 = 0, stopTokens: Set<Int32>? = nil, stopStrings: [String] = [], hiddenStateLayers: [Int] = []) {
        self.prompt = prompt; self.samples = samples; self.maxNewTokens = maxNewTokens; self.sampling = sampling
        self.seed = seed; self.stopTokens = stopTokens; self.stopStrings = stopStrings; self.hiddenStateLayers = hiddenStateLayers
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
    /// The hidden-state means the request's `hiddenStateLayers` asked for (in-process
    /// generation only); nil when none were asked for or the generator cannot record them.
    public var activations: SampleActivations? = nil
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

/// Requests whose samples have all finished: each one's index in the call and its completions,
/// by sample.
public typealias FinishedRequests = [(request: Int, completions: [Completion])]

/// Something that completes prompts: the in-process model, or a remote server.
public protocol Generator: Sendable {
    func generate(_ requests: [GenerationRequest], onToken: (@Sendable (TokenEvent) -> Void)?) async throws -> [Completion]
    /// The same over many requests, at most `maxLive` samples in work at once.
    /// `onRequestsDone` gets the requests whose samples have all finished as soon as they have,
    /// those that finish together in one call (an error it throws ends the call). Returns every
    /// completion, by request and sample. `LocalGenerator` batches continuously; the default
    /// runs static groups.
    func generate(_ requests: [GenerationRequest], maxLive: Int, onToken: (@Sendable (TokenEvent) -> Void)?,
                  onRequestsDone: @escaping @Sendable (FinishedRequests) throws -> Void) async throws -> [Completion]
}

extension Generator {
    /// Static groups: consecutive requests with at most `maxLive` samples in all (one request at
    /// least), each group one `generate` call whose requests are reported together when it
    /// returns.
    public func generate(_ requests: [GenerationRequest], maxLive: Int, onToken: (@Sendable (TokenEvent) -> Void)?,
                         onRequestsDone: @escaping @Sendable (FinishedRequests) throws -> Void) async throws -> [Completion] {
        var all: [Completion] = []
        var start = 0
        while start < requests.count {
            var end = start + 1, samples = requests[start].samples
            while end < requests.count && samples + requests[end].samples <= maxLive { samples += requests[end].samples; end += 1 }
            let offset = start
            let shifted = onToken.map { f in { @Sendable (e: TokenEvent) in var e = e; e.request += offset; f(e) } }
            var group = try await generate(Array(requests[start..<end]), onToken: shifted)
            for i in group.indices { group[i].request += offset }
            group.sort { ($0.request, $0.sample) < ($1.request, $1.sample) }
            try onRequestsDone((start..<end).map { r in (r, group.filter { $0.request == r }) })
            all += group
            start = end
        }
        return all
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
