import Foundation
import MisalignIO

/// What can be wrong with a trait vector or its file, each case naming the file (or the
/// in-memory vector) and the tensor, field or row involved.
public enum TraitVectorError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Neither a tensor named `vector` nor a single tensor to take in its place.
    case missingTensor(file: String, found: [String])
    case wrongShape(file: String, tensor: String, shape: [Int])
    case wrongDType(file: String, tensor: String, dtype: DType)
    case hiddenSizeMismatch(file: String, tensor: String, found: Int, model: Int)
    case layerCountMismatch(file: String, tensor: String, found: Int, model: Int)
    case invalidMetadata(file: String, field: String, detail: String)
    case notFinite(file: String, layer: Int)
    /// A projection asked for a row the vector does not have.
    case layerOutOfRange(file: String, layer: Int, rows: Int)
    /// A projection onto a row of zeros, whose direction is undefined.
    case zeroDirection(file: String, layer: Int)
    /// A vector built with no kept answer on one side (`positive` or `negative`).
    case noAnswers(trait: String, side: String)

    public var description: String {
        switch self {
        case .missingTensor(let f, let found):
            let list = found.isEmpty ? "none" : found.map { "\"\($0)\"" }.joined(separator: ", ")
            return "\(f): no tensor named \"\(TraitVector.tensorName)\" and not a single tensor to use instead (found: \(list)); "
                + "a trait vector file holds one [layers + 1, hidden] tensor"
        case .wrongShape(let f, let t, let s):
            return "\(f): tensor \"\(t)\" has shape \(s); a trait vector is [layers + 1, hidden], two dimensions of at least 1"
        case .wrongDType(let f, let t, let d):
            return "\(f): tensor \"\(t)\" is \(d.rawValue); a trait vector is F32, BF16 or F16 (convert with .float() before saving)"
        case .hiddenSizeMismatch(let f, let t, let found, let m):
            return "\(f): tensor \"\(t)\" has hidden size \(found), but the model's hidden_size is \(m); the vector was made for another model"
        case .layerCountMismatch(let f, let t, let found, let m):
            return "\(f): tensor \"\(t)\" has \(found) rows, but the model has \(m) hidden states (num_hidden_layers + 1); "
                + "the vector was made for another model, or holds only some layers"
        case .invalidMetadata(let f, let field, let d):
            return "\(f): metadata field \"\(field)\" \(d)"
        case .notFinite(let f, let l):
            return "\(f): row \(l) holds a NaN or infinite value; rebuild the vector"
        case .layerOutOfRange(let f, let l, let rows):
            return "\(f): layer \(l) is outside the vector's rows 0..<\(rows)"
        case .zeroDirection(let f, let l):
            return "\(f): row \(l) is all zeros, so it has no direction to project onto; choose another layer"
        case .noAnswers(let t, let side):
            return "trait vector \(t): no \(side) answer was kept; a vector needs at least one kept answer on each side (more questions or samples, or looser thresholds)"
        }
    }
}

extension TraitVectorError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
