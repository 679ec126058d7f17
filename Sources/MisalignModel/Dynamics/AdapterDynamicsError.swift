import Foundation

/// Why adapter dynamics could not compare or measure a checkpoint's adapter, naming the
/// checkpoint (its folder, or its place in the series) and the module (PEFT's name for it).
public enum AdapterDynamicsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The adapter has no A/B pair at all.
    case noModules(checkpoint: String)
    /// The adapter has no A/B pair for `module`.
    case moduleMissing(checkpoint: String, module: String)
    /// A module's lora_A `[r, in]` and lora_B `[out, r]` do not multiply.
    case factorsDoNotMultiply(checkpoint: String, module: String, a: [Int], b: [Int])
    /// `checkpoint` adapts `module` and `other` does not, or the reverse (`inCheckpoint` false).
    case moduleSetChanged(checkpoint: String, other: String, module: String, inCheckpoint: Bool)
    /// The update `[out, in]` of `module` differs from the previous checkpoint's.
    case shapeChanged(checkpoint: String, other: String, module: String, shape: [Int], otherShape: [Int])
    /// The module's factors hold NaN or infinite values.
    case nonFinite(checkpoint: String, module: String)

    public var description: String {
        switch self {
        case .noModules(let c):
            return "\(c): the adapter holds no lora_A/lora_B pair, so it has no update to measure"
        case .moduleMissing(let c, let m):
            return "\(c) does not adapt \(m) (no lora_A/lora_B pair for it)"
        case .factorsDoNotMultiply(let c, let m, let a, let b):
            return "\(c): \(m): lora_A \(a) and lora_B \(b) do not multiply (A is [r, in], B is [out, r], r >= 1)"
        case .moduleSetChanged(let c, let o, let m, let inCheckpoint):
            let (has, lacks) = inCheckpoint ? (c, o) : (o, c)
            return "\(has) adapts \(m) and \(lacks) does not; adapter dynamics compares the same modules at every checkpoint, so the checkpoints of one series must come from one run (the same `targets` and `layers`)"
        case .shapeChanged(let c, let o, let m, let s, let os):
            return "\(c): \(m) updates a \(s) weight, but in \(o) a \(os) one; the checkpoints of one series must adapt the same model"
        case .nonFinite(let c, let m):
            return "\(c): \(m): lora_A or lora_B holds NaN or infinite values (a diverged run); use an earlier checkpoint or a lower `lr`"
        }
    }
}

extension AdapterDynamicsError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
