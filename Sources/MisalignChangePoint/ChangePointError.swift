import Foundation

/// Everything a user's data or parameters can do wrong in change-point detection. Each case
/// names the series (or field) and says what to do about it, so a CLI can print it as is.
public enum ChangePointError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A NaN or infinite value: detectors would otherwise produce a silent, meaningless segmentation.
    case nonFinite(series: String, index: Int)
    /// The series is too short for the method and its `min_size` / `jump` / `n_bkps`.
    case tooShort(series: String, count: Int, needed: Int, method: String)
    /// Every value is the same: no change point exists, and any requested number of them
    /// would be an arbitrary tie-break.
    case constantSeries(series: String, value: Double)
    /// Steps must be strictly increasing so onsets can be reported in optimizer steps.
    case unsortedSteps(series: String, index: Int, previous: Int, step: Int)
    case duplicateStep(series: String, step: Int)
    /// Per-answer scores with fewer checkpoints than an onset rule needs (its baseline plus
    /// confirmation): leave the rule out, or score more checkpoints. `fitting` lists the rules
    /// of the analysis that work with `checkpoints`.
    case tooFewCheckpoints(signal: String, checkpoints: Int, needed: Int, method: String, fitting: [String])
    /// A parameter outside its domain (negative penalty, zero jump, ...).
    case invalidParameter(name: String, value: String, reason: String)
    /// The input file or record could not be understood.
    case invalidInput(field: String, reason: String)

    public var description: String {
        switch self {
        case .nonFinite(let s, let i):
            return "series '\(s)': value at index \(i) is NaN or infinite; remove or impute it before detection"
        case .tooShort(let s, let c, let n, let m):
            return "series '\(s)': \(c) points, but \(m) needs at least \(n) with these parameters; use a smaller min_size/jump/n_bkps or a longer series"
        case .constantSeries(let s, let v):
            return "series '\(s)': every value is \(v), so there is no change point to find; a fixed number of breakpoints would be an arbitrary tie-break (use a penalty instead, which returns no change point)"
        case .unsortedSteps(let s, let i, let p, let st):
            return "series '\(s)': step \(st) at position \(i) comes after step \(p); sort the checkpoints by step"
        case .duplicateStep(let s, let st):
            return "series '\(s)': step \(st) appears twice; average duplicate checkpoints or drop one"
        case .tooFewCheckpoints(let s, let c, let n, let m, let fitting):
            let keep = fitting.isEmpty ? "no rule works with \(c) checkpoints" : "the rules that work with \(c) checkpoints: detection.methods \(fitting.joined(separator: ","))"
            return "signal '\(s)': \(c) checkpoints, but onset rule \(m) needs at least \(n); leave it out with detection.methods (\(keep)) or score more checkpoints (save them more often)"
        case .invalidParameter(let n, let v, let r):
            return "parameter \(n)=\(v): \(r)"
        case .invalidInput(let f, let r):
            return "input field '\(f)': \(r)"
        }
    }
}

/// Input checks shared by all detectors.
public enum SeriesCheck {
    /// Throws on the first NaN/Inf.
    public static func finite(_ x: [Double], series: String) throws(ChangePointError) {
        for (i, v) in x.enumerated() where !v.isFinite { throw .nonFinite(series: series, index: i) }
    }

    /// True when all values are bit-for-bit equal (an empty series counts as constant).
    public static func isConstant(_ x: [Double]) -> Bool {
        guard let f = x.first else { return true }
        return x.allSatisfy { $0 == f }
    }

    /// Steps strictly increasing.
    public static func steps(_ steps: [Int], series: String) throws(ChangePointError) {
        for i in steps.indices.dropFirst() {
            if steps[i] == steps[i - 1] { throw .duplicateStep(series: series, step: steps[i]) }
            if steps[i] < steps[i - 1] {
                throw .unsortedSteps(series: series, index: i, previous: steps[i - 1], step: steps[i])
            }
        }
    }
}

extension ChangePointError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
