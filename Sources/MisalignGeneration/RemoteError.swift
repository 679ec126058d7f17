import Foundation
import MisalignHTTP
import MisalignIO

/// What can go wrong when generation is delegated to a server. Descriptions name the URL,
/// adapter, request field or status and say what to do; they never contain the API key
/// (request headers are never echoed, server text is scrubbed of it).
public enum RemoteGenerationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No connection could be made (the server is down, or the URL is wrong).
    case serverDown(url: String, reason: String)
    /// The connect or total timeout passed.
    case timeout(url: String, seconds: Double)
    /// The server answered with an error status; `message` is its own explanation.
    case http(url: String, status: Int, message: String)
    /// The body is not the JSON the OpenAI completions API documents; `field` names what is
    /// missing or wrong (`choices[0].text`).
    case malformedResponse(url: String, field: String, detail: String)
    /// The server refused to load an adapter.
    case adapterLoad(name: String, path: String, status: Int, message: String)
    /// The server does not know the model or adapter a request named.
    case unknownModel(url: String, model: String, message: String)
    /// The API key variable named in the configuration is unset or empty.
    case missingAPIKey(variable: String)
    /// A request or option is invalid before anything is sent.
    case invalidRequest(String)
    /// Retries ran out; `last` is the final failure.
    indirect case retriesExhausted(attempts: Int, last: RemoteGenerationError)
    /// Any other transport failure (cut-off body, oversized response, cancellation).
    case transport(String)

    public var description: String {
        switch self {
        case .serverDown(let url, let reason):
            return "cannot reach the generation server at \(url): \(reason); is it running (vllm serve ... --enable-lora) and is the URL right?"
        case .timeout(let url, let s): return "generation request to \(url) timed out after \(s) s; raise the timeout or lower the concurrency"
        case .http(let url, let status, let message):
            let hint = status == 401 || status == 403 ? " (check the API key variable and the server's --api-key)" : ""
            return "HTTP \(status) from \(url)\(hint): \(message)"
        case .malformedResponse(let url, let field, let detail):
            return "unexpected response from \(url): \(field) \(detail); is this an OpenAI-compatible /v1/completions endpoint?"
        case .adapterLoad(let name, let path, let status, let message):
            // Without VLLM_ALLOW_RUNTIME_LORA_UPDATING the route does not exist (FastAPI's bare
            // "Not Found"); with it, a path the server cannot read is "No adapter found".
            let hint = status == 404 && message == "Not Found" ? "; start vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora"
                : status == 404 || message.contains("No adapter found") ? "; the server cannot read that folder: map the path with generation.path_map (LOCAL: SERVER)"
                : ""
            return "the server refused to load adapter \(name) from \(path) (HTTP \(status)): \(message)\(hint)"
        case .unknownModel(let url, let model, let message):
            return "\(url) does not serve \(model) (\(message)); check generation.served_model (the name given to vllm serve) and that the adapter is loaded"
        case .missingAPIKey(let v): return "environment variable \(v) is not set; export it with the server's API key"
        case .invalidRequest(let m): return m
        case .retriesExhausted(let n, let last): return "gave up after \(n) attempts: \(last)"
        case .transport(let m): return m
        }
    }

    /// The generation error for a failure of the shared HTTP client. `model` is the model the
    /// request named, for 404s.
    static func from(_ e: HTTPError, model: String?) -> RemoteGenerationError {
        switch e {
        case .connection(let url, let reason): return .serverDown(url: url, reason: reason)
        case .timeout(let url, let s): return .timeout(url: url, seconds: s)
        case .http(let url, let status, let body):
            let message = serverMessage(body)
            if status == 404, let model { return .unknownModel(url: url, model: model, message: message) }
            return .http(url: url, status: status, message: message)
        case .malformedResponse(let url, let reason):
            // `reason` is "FIELD: detail" from `RemoteWire.parse`.
            if let colon = reason.range(of: ": ") {
                return .malformedResponse(url: url, field: String(reason[..<colon.lowerBound]), detail: String(reason[colon.upperBound...]))
            }
            return .malformedResponse(url: url, field: "body", detail: reason)
        case .retriesExhausted(let n, let last): return .retriesExhausted(attempts: n, last: from(last, model: model))
        case .rejected(let m): return .invalidRequest(m)
        default: return .transport(e.description)
        }
    }

    /// The human part of an error body: vLLM and OpenAI send `{"error": {"message": ...}}`,
    /// older vLLM `{"message": ...}`, FastAPI `{"detail": ...}`; anything else as it is.
    static func serverMessage(_ body: String) -> String {
        guard let v = try? JSONValue.parse(body) else { return body }
        if let m = v["error"]?["message"]?.stringValue ?? v["message"]?.stringValue ?? v["error"]?.stringValue
            ?? v["detail"]?.stringValue { return m }
        return body
    }
}

extension RemoteGenerationError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
