import Foundation
import Synchronization
import MisalignCore

/// A stand-in vLLM server on 127.0.0.1 for tests and dry runs: `POST /v1/completions` (prompt
/// as token ids, one or more choices), `POST /v1/load_lora_adapter` and
/// `/v1/unload_lora_adapter` with vLLM's answers (200 text, 400 "has already been loaded",
/// 404 for an unknown adapter or a folder without `adapter_config.json`), and vLLM's 404
/// for a completion naming a model it does not serve.
///
/// Completions are deterministic: the text is a function of the model name, the prompt ids,
/// the seed and the choice index (`text(model:prompt:seed:choice:)`), and token ids are
/// returned as vLLM's `token_id:<id>` strings when asked. `fault` may answer any request
/// first (429 storms, 500s, stalls, garbage), and every request is recorded.
public final class MockCompletionServer: Sendable {
    public typealias Request = LoopbackHTTPServer.Request
    public typealias Action = LoopbackHTTPServer.Action
    /// Consulted before the normal answer; returning an action short-circuits it.
    public typealias Fault = @Sendable (_ request: Request, _ number: Int) -> Action?

    public let baseModel: String
    /// Check that a loaded adapter's folder exists and holds `adapter_config.json`.
    public let checkPaths: Bool
    private let state: MockCompletionState
    private let server: LoopbackHTTPServer

    public init(baseModel: String = "base", checkPaths: Bool = true, fault: Fault? = nil) throws(JudgeError) {
        self.baseModel = baseModel
        self.checkPaths = checkPaths
        let state = MockCompletionState()
        self.state = state
        server = try LoopbackHTTPServer { request, number in
            if let fault, let action = fault(request, number) { return action }
            return MockCompletionServer.answer(request, state: state, baseModel: baseModel, checkPaths: checkPaths)
        }
    }

    deinit { server.stop() }

    public var baseURL: String { server.baseURL }
    public var port: Int { server.port }
    public func stop() { server.stop() }
    /// Every request received, in order (every attempt counts).
    public var requests: [Request] { server.requests }
    /// Completion requests received.
    public var completionRequests: [Request] { requests.filter { $0.path.hasSuffix("/completions") } }
    /// Adapters loaded now, name to path.
    public var loadedAdapters: [String: String] { state.adapters }
    /// Loads that succeeded, in order (a repeated name is refused and not listed).
    public var loadHistory: [String] { state.history }

    /// The text of choice `choice` for (model, prompt, seed): a few words from an FNV-1a hash,
    /// led by the model name so a test can see which adapter answered.
    public static func text(model: String, prompt: [Int], seed: Int64?, choice: Int) -> String {
        let h = hash(model: model, prompt: prompt, seed: seed, choice: choice)
        let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
        return "[\(model)] " + (0..<4).map { words[Int((h >> UInt64(8 * $0)) % 8)] }.joined(separator: " ")
    }

    static func hash(model: String, prompt: [Int], seed: Int64?, choice: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ b: UInt64) { h = (h ^ b) &* 0x100_0000_01B3 }
        for b in model.utf8 { mix(UInt64(b)) }
        for t in prompt { mix(UInt64(UInt32(truncatingIfNeeded: t))) }
        mix(UInt64(bitPattern: seed ?? -1)); mix(UInt64(choice))
        return h
    }

    static func json(_ status: Int, _ v: JSONValue) -> Action {
        .respond(status: status, headers: [], body: Data(v.serialized().utf8))
    }

    /// vLLM's error body.
    static func error(_ status: Int, _ message: String, type: String) -> Action {
        json(status, .object(JSONObject([("error", .object(JSONObject([
            ("message", .string(message)), ("type", .string(type)), ("code", .int(Int64(status))),
        ])))])))
    }

    static func answer(_ r: Request, state: MockCompletionState, baseModel: String, checkPaths: Bool) -> Action {
        guard r.method == "POST", let body = r.json else { return error(400, "expected a POST with a JSON body", type: "BadRequestError") }
        switch r.path {
        case "/v1/load_lora_adapter":
            guard let name = body["lora_name"]?.stringValue, let path = body["lora_path"]?.stringValue, !name.isEmpty, !path.isEmpty else {
                return error(400, "Both 'lora_name' and 'lora_path' must be provided.", type: "InvalidUserInput")
            }
            if state.adapters[name] != nil { return error(400, "The lora adapter '\(name)' has already been loaded.", type: "InvalidUserInput") }
            if checkPaths && !FileManager.default.fileExists(atPath: path + "/adapter_config.json") {
                return error(404, "No adapter found for \(path)", type: "NotFoundError")
            }
            // Checked again as it is recorded: a concurrent load of the same name may have won.
            guard state.load(name, path) else { return error(400, "The lora adapter '\(name)' has already been loaded.", type: "InvalidUserInput") }
            return .respond(status: 200, headers: [], body: Data("Success: LoRA adapter '\(name)' added successfully.".utf8))
        case "/v1/unload_lora_adapter":
            guard let name = body["lora_name"]?.stringValue, state.unload(name) else {
                return error(404, "The lora adapter '\(body["lora_name"]?.stringValue ?? "")' cannot be found.", type: "NotFoundError")
            }
            return .respond(status: 200, headers: [], body: Data("Success: LoRA adapter '\(name)' removed successfully.".utf8))
        case "/v1/completions":
            return completion(body, state: state, baseModel: baseModel)
        default:
            return json(404, .object(JSONObject([("detail", .string("Not Found"))])))
        }
    }

    static func completion(_ body: JSONValue, state: MockCompletionState, baseModel: String) -> Action {
        guard let model = body["model"]?.stringValue else { return error(400, "model is required", type: "BadRequestError") }
        guard model == baseModel || state.adapters[model] != nil else {
            return error(404, "The model `\(model)` does not exist.", type: "NotFoundError")
        }
        guard let prompt = body["prompt"]?.arrayValue?.compactMap(\.intValue), !prompt.isEmpty else {
            return error(400, "prompt must be a non-empty list of token ids", type: "BadRequestError")
        }
        let n = body["n"]?.intValue ?? 1
        let maxTokens = body["max_tokens"]?.intValue ?? 16
        let seed = body["seed"]?.intValue.map { Int64($0) }
        let ids = body["return_tokens_as_token_ids"]?.boolValue == true && body["logprobs"] != nil
        var choices: [JSONValue] = []
        var used = 0
        for i in 0..<n {
            let words = text(model: model, prompt: prompt, seed: seed, choice: i).split(separator: " ")
            // One "token" per word, ids from the word's hash; the budget cuts the text short.
            let kept = Array(words.prefix(maxTokens))
            used += kept.count
            var c: [(String, JSONValue)] = [
                ("index", .int(Int64(i))), ("text", .string(kept.joined(separator: " "))),
                ("finish_reason", .string(kept.count < words.count ? "length" : "stop")), ("stop_reason", .null),
            ]
            if ids {
                let tokens = kept.map { w -> JSONValue in .string("token_id:\(hash(model: String(w), prompt: [], seed: nil, choice: 0) % 150_000)") }
                c.append(("logprobs", .object(JSONObject([("tokens", .array(tokens))]))))
            }
            choices.append(.object(JSONObject(c)))
        }
        return json(200, .object(JSONObject([
            ("id", .string("cmpl-mock")), ("object", .string("text_completion")), ("model", .string(model)),
            ("choices", .array(choices)),
            ("usage", .object(JSONObject([("prompt_tokens", .int(Int64(prompt.count))), ("completion_tokens", .int(Int64(used))),
                                          ("total_tokens", .int(Int64(prompt.count + used)))]))),
        ])))
    }
}

/// The adapters a `MockCompletionServer` holds.
final class MockCompletionState: Sendable {
    private let state = Mutex((loaded: [String: String](), log: [String]()))
    var adapters: [String: String] { state.withLock { $0.loaded } }
    var history: [String] { state.withLock { $0.log } }
    /// Records a load; false (nothing recorded) when `name` is already loaded.
    func load(_ name: String, _ path: String) -> Bool {
        state.withLock { s in
            guard s.loaded[name] == nil else { return false }
            s.loaded[name] = path; s.log.append(name)
            return true
        }
    }
    func unload(_ name: String) -> Bool { state.withLock { $0.loaded.removeValue(forKey: name) != nil } }
}
