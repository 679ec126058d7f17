import Foundation
import MisalignCore

/// The stand-in judge API of the tests, the `judge` benchmark and dry runs of a sweep: a
/// `LoopbackHTTPServer` whose handler speaks the OpenAI chat-completions and Anthropic
/// Messages wire formats (bodies below) and misbehaves on command.
public typealias MockJudgeServer = LoopbackHTTPServer

extension LoopbackHTTPServer.Request {
    /// The user prompt of an OpenAI or Anthropic request (first message's content).
    public var prompt: String { json?["messages"]?.arrayValue?.first?["content"]?.stringValue ?? "" }
}

extension MockJudgeServer {
    /// A 200 chat-completions body: `content`, optional first-token `top` logprobs, optional
    /// `refusal`.
    public static func openAIBody(content: String, top: [(String, Double)]?, refusal: String? = nil,
                                  promptTokens: Int = 100, completionTokens: Int = 1) -> Data {
        var choice: [(String, JSONValue)] = [
            ("index", .int(0)),
            ("message", .object(JSONObject([("role", .string("assistant")), ("content", .string(content)),
                                            ("refusal", refusal.map { .string($0) } ?? .null)]))),
            ("finish_reason", .string("length")),
        ]
        if let top {
            let entries = top.map { JSONValue.object(JSONObject([("token", .string($0.0)), ("logprob", .double($0.1))])) }
            let first = JSONValue.object(JSONObject([("token", .string(top.first?.0 ?? content)),
                                                      ("logprob", .double(top.first?.1 ?? 0)), ("top_logprobs", .array(entries))]))
            choice.append(("logprobs", .object(JSONObject([("content", .array([first]))]))))
        } else {
            choice.append(("logprobs", .null))
        }
        let v = JSONValue.object(JSONObject([
            ("id", .string("chatcmpl-mock")), ("object", .string("chat.completion")),
            ("choices", .array([.object(JSONObject(choice))])),
            ("usage", .object(JSONObject([("prompt_tokens", .int(Int64(promptTokens))), ("completion_tokens", .int(Int64(completionTokens)))]))),
        ]))
        return Data(v.serialized().utf8)
    }

    /// A 200 Messages body with one text block.
    public static func anthropicBody(text: String, stopReason: String = "end_turn", inputTokens: Int = 100, outputTokens: Int = 2) -> Data {
        let v = JSONValue.object(JSONObject([
            ("id", .string("msg_mock")), ("type", .string("message")), ("role", .string("assistant")),
            ("content", .array([.object(JSONObject([("type", .string("text")), ("text", .string(text))]))])),
            ("stop_reason", .string(stopReason)),
            ("usage", .object(JSONObject([("input_tokens", .int(Int64(inputTokens))), ("output_tokens", .int(Int64(outputTokens)))]))),
        ]))
        return Data(v.serialized().utf8)
    }

    /// A well-behaved judge: the score is a pure function of the prompt (FNV-1a hash mod 101),
    /// returned as logprobs spread over it and its neighbours on /chat/completions and as text
    /// on /messages. Used by the benchmark and the CLI tests.
    public static let deterministic: Handler = { request, _ in
        var h: UInt64 = 0xcbf29ce484222325
        for b in request.prompt.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        let s = Int(h % 101)
        if request.path.hasSuffix("/messages") {
            return .respond(status: 200, headers: [], body: anthropicBody(text: "\(s)"))
        }
        // A server whose tokenizer has whole numbers: asked to go on after one, it stops.
        if request.json?["continue_final_message"]?.boolValue == true {
            return .respond(status: 200, headers: [], body: openAIBody(content: "", top: [("<|im_end|>", log(0.9)), ("\n", log(0.1))]))
        }
        let lo = max(0, s - 1), hi = min(100, s + 1)
        let top: [(String, Double)] = [("\(s)", log(0.6)), ("\(lo == s ? hi : lo)", log(0.2)), ("\(hi == s ? lo : hi)", log(0.1)), ("The", log(0.05))]
        return .respond(status: 200, headers: [], body: openAIBody(content: "\(s)", top: top))
    }
}

extension MockJudgeServer {
    /// A judge whose tokenizer splits numbers into digits (Qwen's, behind vLLM): `scores`
    /// gives, for a user prompt, the probability of each score 0-100. The first token's top
    /// list holds each first digit's probability; a request continuing the answer from a
    /// prefix (`continue_final_message`) gets the next digit's distribution given the prefix,
    /// with `<|im_end|>` for "the number ends here". A server that does not continue answers
    /// (`continues: false`) rejects such requests with 400, as OpenAI's API does.
    public static func digitSplitting(continues: Bool = true, scores: @escaping @Sendable (String) -> [Int: Double]) -> Handler {
        return { request, _ in
            let dist = scores(request.prompt)
            let messages = request.json?["messages"]?.arrayValue ?? []
            let isContinuation = request.json?["continue_final_message"]?.boolValue == true
            if isContinuation && !continues {
                return .respond(status: 400, headers: [], body: Data(#"{"error":{"message":"Unrecognized request argument supplied: continue_final_message"}}"#.utf8))
            }
            let prefix = isContinuation ? (messages.last?["content"]?.stringValue ?? "") : ""
            var next: [String: Double] = [:]
            for (n, p) in dist where p > 0 {
                let text = String(n)
                guard text.hasPrefix(prefix) else { continue }
                let rest = text.dropFirst(prefix.count)
                next[rest.first.map { String($0) } ?? "<|im_end|>", default: 0] += p
            }
            let total = next.values.reduce(0, +)
            let top = next.sorted { $0.value > $1.value }.prefix(20).map { ($0.key, log($0.value / max(total, 1e-300))) }
            return .respond(status: 200, headers: [], body: openAIBody(content: top.first?.0 ?? "", top: Array(top)))
        }
    }
}
