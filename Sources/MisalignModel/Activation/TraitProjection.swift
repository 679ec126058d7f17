import Foundation
import MisalignKernels

/// One row of a trait vector, ready for projections: `(h . v) / |v|`, the scalar projection
/// of a hidden state `h` onto the direction `v` (persona_vectors' `a_proj_b`), in f64
/// accumulation. Its unit is the hidden state's: how far `h` reaches along the trait's
/// direction, not a probability and not a judge's score.
public struct TraitDirection: Sendable {
    public let vector: TraitVector
    /// The hidden-state index of the row.
    public let layer: Int
    /// |v|, in f64.
    public let norm: Double

    /// (h . v) / |v| of one `hidden`-value row.
    public func project(_ h: UnsafePointer<Float>) -> Double {
        let v = vector.values.pointer + layer * vector.hidden
        var dot = 0.0
        for j in 0..<vector.hidden { dot += Double(h[j]) * Double(v[j]) }
        return dot / norm
    }

    /// The projection of a mean capture (`HiddenStateRequest.responseMean`, `.promptLast`)
    /// holding this direction's layer; nil when it averaged no rows. The capture must come from
    /// a model of the vector's hidden size (`TraitVector.projection(of:)` checks it).
    public func project(mean states: HiddenStates) -> Double? {
        guard case .mean = states.kind else { preconditionFailure("project(mean:) takes a mean capture") }
        guard let row = states.state(layer: layer) else {
            preconditionFailure("the capture holds layers \(states.layers), not \(layer), the layer projected at")
        }
        return states.count > 0 ? project(row.pointer) : nil
    }

    /// The projection of every row of `[rows, hidden]`.
    public func project(rows: TensorView) -> [Double] {
        precondition(rows.cols == vector.hidden, "rows of \(rows.cols) values projected onto a direction of \(vector.hidden)")
        return (0..<rows.rows).map { project(rows.pointer + $0 * rows.cols) }
    }

    /// The projection of the mean of rows `range` of `[rows, hidden]`, the mean taken in f64
    /// (equal to the mean of their projections).
    public func projectMean(rows: TensorView, _ range: Range<Int>) -> Double {
        precondition(rows.cols == vector.hidden && range.lowerBound >= 0 && range.upperBound <= rows.rows && !range.isEmpty,
                     "mean of rows \(range) of \(rows.shape) onto a direction of \(vector.hidden)")
        let v = vector.values.pointer + layer * vector.hidden
        var dot = 0.0
        for r in range {
            let h = rows.pointer + r * rows.cols
            for j in 0..<vector.hidden { dot += Double(h[j]) * Double(v[j]) }
        }
        return dot / Double(range.count) / norm
    }
}

extension TraitVector {
    /// The direction at hidden-state index `layer` (the chosen `layer` when nil).
    public func direction(layer: Int? = nil) throws(TraitVectorError) -> TraitDirection {
        guard let l = layer ?? self.layer else {
            throw TraitVectorError.invalidMetadata(file: source, field: "layer", detail: "is not set; name the layer to project at")
        }
        guard l >= 0 && l < entries else { throw TraitVectorError.layerOutOfRange(file: source, layer: l, rows: entries) }
        let v = values.pointer + l * hidden
        var sq = 0.0
        for j in 0..<hidden { sq += Double(v[j]) * Double(v[j]) }
        guard sq > 0 else { throw TraitVectorError.zeroDirection(file: source, layer: l) }
        return TraitDirection(vector: self, layer: l, norm: sq.squareRoot())
    }

    /// The projection of a mean capture (`HiddenStateRequest.responseMean`, `.promptLast`,
    /// any `.mean`) at `layer`; nil when the capture averaged no rows.
    public func projection(of states: HiddenStates, layer: Int? = nil) throws(TraitVectorError) -> Double? {
        let d = try direction(layer: layer)
        guard case .mean = states.kind else { preconditionFailure("projection(of:) takes a mean capture; use the rows helpers for rows") }
        _ = try stateView(states, d.layer)
        return d.project(mean: states)
    }

    /// The response-mean projection of an answer from a rows capture of prompt + response:
    /// the mean of the rows at positions `promptLength...` onto the direction. Nil when the
    /// capture holds no response rows.
    public func responseMeanProjection(of states: HiddenStates, promptLength: Int, layer: Int? = nil) throws(TraitVectorError) -> Double? {
        let d = try direction(layer: layer)
        let view = try rowsView(states, d.layer)
        let first = max(promptLength - states.firstPosition, 0)
        guard first < states.count else { return nil }
        return d.projectMean(rows: view, first..<states.count)
    }

    /// The prompt-last-token projection from a rows capture holding position `promptLength - 1`;
    /// nil when it does not hold it.
    public func promptLastProjection(of states: HiddenStates, promptLength: Int, layer: Int? = nil) throws(TraitVectorError) -> Double? {
        let d = try direction(layer: layer)
        let view = try rowsView(states, d.layer)
        let r = promptLength - 1 - states.firstPosition
        guard r >= 0 && r < states.count else { return nil }
        return d.project(view.pointer + r * hidden)
    }

    private func rowsView(_ states: HiddenStates, _ layer: Int) throws(TraitVectorError) -> TensorView {
        guard case .rows = states.kind else { preconditionFailure("this helper takes a rows capture; use projection(of:) for a mean") }
        return try stateView(states, layer)
    }

    private func stateView(_ states: HiddenStates, _ layer: Int) throws(TraitVectorError) -> TensorView {
        guard states.hidden == hidden else {
            throw TraitVectorError.hiddenSizeMismatch(file: source, tensor: tensorNameInFile, found: hidden, model: states.hidden)
        }
        guard let view = states.state(layer: layer) else {
            preconditionFailure("the capture holds layers \(states.layers), not \(layer), the layer projected at")
        }
        return view
    }
}
