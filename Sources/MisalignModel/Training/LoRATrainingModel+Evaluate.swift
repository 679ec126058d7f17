import CMisalignKernels
import Foundation

extension LoRATrainingModel {
    /// The sum of the token cross-entropies of `batch` from the forward pass alone: no
    /// dropout (as `model.eval()` in PyTorch), no gradient, `parameters.grads` untouched. With
    /// dropout 0 it equals what `accumulateGradients` returns for the same batch.
    public func evaluationLoss(_ batch: TrainingBatch) throws -> Double {
        guard batch.rows > 0 else { return 0 }
        try check(batch)
        evaluating = true
        defer { evaluating = false }
        let H = config.hiddenSize, V = config.vocabSize
        embed(batch)
        for l in 0..<config.numHiddenLayers { layerForward(l, acts[recompute ? 0 : l], batch: batch) }
        let rows = batch.targets.indices.filter { batch.targets[$0] >= 0 }
        let eps = Float(config.rmsNormEps)
        var total = 0.0
        var losses = [Double](repeating: 0, count: Self.headChunk)
        var c0 = 0
        while c0 < rows.count {
            let m = min(Self.headChunk, rows.count - c0)
            for i in 0..<m { (headX.pointer + i * H).update(from: x.pointer + rows[c0 + i] * H, count: H) }
            misalign_rmsnorm(headN.pointer, headX.pointer, weights.norm.pointer, eps, m, H)
            headLogits(rows: m, precision: .f32)
            let targets = (0..<m).map { batch.targets[rows[c0 + $0]] }
            // The kernel's loss is the forward cross-entropy; the gradient it leaves in the logits is unused.
            targets.withUnsafeBufferPointer { t in
                losses.withUnsafeMutableBufferPointer { misalign_cross_entropy_backward(logits.pointer, t.baseAddress, $0.baseAddress, 0, m, V) }
            }
            for i in 0..<m { total += losses[i] }
            c0 += m
        }
        return total
    }
}
