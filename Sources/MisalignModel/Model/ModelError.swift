import Foundation
import MisalignIO

/// Problems loading or running a model, each naming the tensor, file or limit involved.
public enum ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    case missingTensor(name: String, source: String)
    case wrongShape(name: String, expected: [Int], found: [Int])
    case unsupportedDType(name: String, dtype: DType)
    case dtypeMismatch(name: String, config: String, stored: DType)
    case contextExceeded(sequence: Int, length: Int, limit: Int, what: String)
    case invalidToken(id: Int, vocabSize: Int)
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .missingTensor(let n, let s):
            return "weight \"\(n)\" is missing from \(s); the folder is incomplete or is not a Qwen2 model"
        case .wrongShape(let n, let e, let f):
            return "weight \"\(n)\" has shape \(f), but config.json implies \(e); the config and the weights do not belong together"
        case .unsupportedDType(let n, let d):
            return "weight \"\(n)\" is stored as \(d.rawValue); only F32, BF16 and F16 weights are supported"
        case .dtypeMismatch(let n, let c, let s):
            return "config.json says the weights are \(c) but \"\(n)\" is stored as \(s.rawValue); fix the \"dtype\"/\"torch_dtype\" field or re-export the weights"
        case .contextExceeded(let s, let l, let lim, let what):
            return "sequence \(s) would reach \(l) tokens, beyond the \(what) of \(lim); shorten the prompt or lower max_new_tokens"
        case .invalidToken(let id, let v):
            return "token id \(id) is outside the vocabulary (0..<\(v))"
        case .invalidRequest(let m):
            return m
        }
    }
}

extension ModelError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
