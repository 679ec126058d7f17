import Foundation

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
        let lo = max(0, s - 1), hi = min(100, s + 1)
        let top: [(String, Double)] = [("\(s)", log(0.6)), ("\(lo == s ? hi : lo)", log(0.2)), ("\(hi == s ? lo : hi)", log(0.1)), ("The", log(0.05))]
        return .respond(status: 200, headers: [], body: openAIBody(content: "\(s)", top: top))
    }
}
