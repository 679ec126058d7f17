import Foundation

/// Everything that can be wrong with a GGUF file or its import. Each case names the file and the
/// field or tensor; the description says what is wrong and what to do.
public enum GGUFError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file ended while `field` was read, at byte `offset` of `size`.
    case truncated(file: String, field: String, offset: Int, size: Int)
    /// The first four bytes are not `GGUF`.
    case notGGUF(file: String, found: String)
    /// A GGUF version other than 2 or 3.
    case unsupportedVersion(file: String, version: UInt32)
    /// A header field that cannot be right (unknown value type, bad UTF-8, absurd count, ...).
    case invalidField(file: String, field: String, detail: String)
    case duplicateKey(file: String, key: String)
    case duplicateTensor(file: String, tensor: String)
    /// A tensor whose shape, offset or size cannot be right.
    case invalidTensor(file: String, tensor: String, detail: String)
    /// A tensor's data runs past the end of the file.
    case tensorDataOutOfRange(file: String, tensor: String, end: Int, size: Int)
    /// A GGML tensor type this library does not dequantise, by name.
    case unsupportedTensorType(file: String, tensor: String, type: String)
    case missingKey(file: String, key: String)
    case wrongKeyType(file: String, key: String, expected: String, found: String)
    case tensorNotFound(file: String, tensor: String)
    /// `general.architecture` names an architecture the importer does not map.
    case unsupportedArchitecture(file: String, architecture: String, supported: [String])
    /// A tensor the architecture's name map does not know, or one the model needs that is missing.
    case unexpectedTensor(file: String, tensor: String, detail: String)
    /// Something the tokenizer metadata asks for that the converter cannot write.
    case unsupportedTokenizer(file: String, field: String, detail: String)
    /// The import's output folder exists and is not empty.
    case outputNotEmpty(path: String)

    public var description: String {
        switch self {
        case .truncated(let f, let field, let o, let s):
            return "\(f): the file ends at byte \(s) while reading \(field) at byte \(o); it is truncated: download or copy it again."
        case .notGGUF(let f, let found):
            return "\(f): not a GGUF file (it starts with \(found), not \"GGUF\"); pass a .gguf file as llama.cpp writes them."
        case .unsupportedVersion(let f, let v):
            return "\(f): GGUF version \(v) is not supported (versions 2 and 3 are); convert it again with a current llama.cpp."
        case .invalidField(let f, let field, let d):
            return "\(f): \(field) \(d); the file is corrupt or not written by a GGUF writer."
        case .duplicateKey(let f, let k):
            return "\(f): metadata key \"\(k)\" appears twice; the file is corrupt."
        case .duplicateTensor(let f, let t):
            return "\(f): tensor \"\(t)\" appears twice; the file is corrupt."
        case .invalidTensor(let f, let t, let d):
            return "\(f): tensor \"\(t)\" \(d); the file is corrupt."
        case .tensorDataOutOfRange(let f, let t, let e, let s):
            return "\(f): the data of tensor \"\(t)\" ends at byte \(e), past the end of the \(s)-byte file; the file is truncated: download or copy it again."
        case .unsupportedTensorType(let f, let t, let type):
            return "\(f): tensor \"\(t)\" is stored as \(type), which is not supported (supported: \(GGMLType.supportedNames)); pick a GGUF quantised with one of those (e.g. Q4_K_M, Q6_K, Q8_0, F16)."
        case .missingKey(let f, let k):
            return "\(f): metadata key \"\(k)\" is missing; the file was not written by llama.cpp's converter or is for another architecture."
        case .wrongKeyType(let f, let k, let e, let found):
            return "\(f): metadata key \"\(k)\" is \(found), not \(e); the file is corrupt."
        case .tensorNotFound(let f, let t):
            return "\(f): no tensor named \"\(t)\"."
        case .unsupportedArchitecture(let f, let a, let s):
            return "\(f): general.architecture is \"\(a)\", which cannot be imported (supported: \(s.map { "\"\($0)\"" }.joined(separator: ", ")))."
        case .unexpectedTensor(let f, let t, let d):
            return "\(f): tensor \"\(t)\" \(d)."
        case .unsupportedTokenizer(let f, let field, let d):
            return "\(f): \(field): \(d)."
        case .outputNotEmpty(let p):
            return "\(p): the output folder exists and is not empty; name a new folder, or allow replacing it."
        }
    }
}

extension GGUFError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
