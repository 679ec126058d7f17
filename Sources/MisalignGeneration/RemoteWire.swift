import Foundation
import MisalignHTTP
import MisalignIO
import MisalignKernels

/// The OpenAI completions wire format as vLLM speaks it: request bodies and the parts of a
/// response a `Completion` needs.
enum RemoteWire {
    /// The seed sent for sample `sample` of `request`: the same SplitMix64 stream the local
    /// generator uses for it, cut to 63 bits (vLLM validates seeds as signed 64-bit).
    static func sampleSeed(_ request: GenerationRequest, sample: Int) -> Int64 {
        var g = SplitMix64.forSample(seed: request.seed, prompt: request.prompt, sample: sample)
        return Int64(bitPattern: g.next() & 0x7FFF_FFFF_FFFF_FFFF)
    }

    /// One sample of `request` as a `/v1/completions` body. One request per sample (n = 1)
    /// with its own seed: with `n > 1` and a seed, vLLM draws every choice from one seeded
    /// generator (or, in its V1 engine, gives each the same seed), so a sample could not be
    /// redone alone; per-sample requests also let a retry resend only the failed samples.
    /// vLLM's prefix cache makes the repeated prompt nearly free. Sampling fields left at
    /// their neutral values are omitted, so servers that do not know them still accept it.
    static func body(model: String, request r: GenerationRequest, sample: Int, tokenIDs: Bool) -> JSONValue {
        var o: [(String, JSONValue)] = [
            ("model", .string(model)),
            ("prompt", .array(r.prompt.map { .int(Int64($0)) })),
            ("n", .int(1)),
            ("max_tokens", .int(Int64(r.maxNewTokens))),
            ("temperature", .double(r.sampling.temperature)),
            ("top_p", .double(r.sampling.topP)),
            ("seed", .int(sampleSeed(r, sample: sample))),
        ]
        if r.sampling.topK > 0 { o.append(("top_k", .int(Int64(r.sampling.topK)))) }
        if r.sampling.minP > 0 { o.append(("min_p", .double(r.sampling.minP))) }
        if r.sampling.repetitionPenalty != 1 { o.append(("repetition_penalty", .double(r.sampling.repetitionPenalty))) }
        if !r.stopStrings.isEmpty { o.append(("stop", .array(r.stopStrings.map { .string($0) }))) }
        if let stops = r.stopTokens { o.append(("stop_token_ids", .array(stops.sorted().map { .int(Int64($0)) }))) }
        if tokenIDs {
            // vLLM then spells each sampled token "token_id:<id>" in logprobs.tokens.
            o.append(("logprobs", .int(0)))
            o.append(("return_tokens_as_token_ids", .bool(true)))
        }
        return .object(JSONObject(o))
    }

    /// What one choice of a completions response says.
    struct Choice: Sendable, Equatable {
        var text: String
        var tokens: [Int32]?
        var finish: FinishReason
        var promptTokens: Int
        var completionTokens: Int?
    }

    /// Parses a completions response holding one choice. Errors are `malformedResponse`
    /// with a reason "FIELD: detail", which `RemoteGenerationError.from` splits.
    static func parse(_ data: Data, url: String) throws(HTTPError) -> Choice {
        func bad(_ field: String, _ detail: String) -> HTTPError { .malformedResponse(url: url, reason: "\(field): \(detail)") }
        let v: JSONValue
        do { v = try JSONValue.parse(data) } catch { throw bad("body", "is not JSON (\(error.description))") }
        guard let choices = v["choices"]?.arrayValue else { throw bad("choices", "is missing or not an array") }
        guard let c = choices.first else { throw bad("choices", "is empty") }
        guard let text = c["text"]?.stringValue else { throw bad("choices[0].text", "is missing or not a string") }
        let finish: FinishReason
        switch c["finish_reason"]?.stringValue {
        case "length": finish = .length
        // vLLM's stop_reason is the matched stop string, a stop token id, or null for EOS.
        case "stop": finish = c["stop_reason"]?.stringValue != nil ? .stopString : .stop
        case let other: throw bad("choices[0].finish_reason", "is \(other.map { "\"\($0)\"" } ?? "missing"); expected \"stop\" or \"length\"")
        }
        var tokens: [Int32]? = nil
        if let list = c["logprobs"]?["tokens"]?.arrayValue {
            var ids: [Int32] = []
            for (i, t) in list.enumerated() {
                guard let s = t.stringValue, s.hasPrefix("token_id:"), let id = Int32(s.dropFirst(9)) else {
                    throw bad("choices[0].logprobs.tokens[\(i)]", "is not \"token_id:<id>\" (is return_tokens_as_token_ids supported?)")
                }
                ids.append(id)
            }
            tokens = ids
        }
        let usage = v["usage"]
        return Choice(text: text, tokens: tokens, finish: finish, promptTokens: usage?["prompt_tokens"]?.intValue ?? 0,
                      completionTokens: usage?["completion_tokens"]?.intValue)
    }
}
