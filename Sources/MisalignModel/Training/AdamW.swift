import Foundation
import MisalignKernels

/// AdamW as `torch.optim.AdamW` computes it on CPU (the single-tensor path), operation for
/// operation in f32 with the scalar factors in double, so one step matches PyTorch to rounding:
///
///     p *= 1 - lr * wd                      (decoupled weight decay, before the moments)
///     m  = m + (1 - b1) (g - m)             (torch's lerp)
///     v  = b2 v + (1 - b2) g^2
///     p += (-lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
///
/// transformers' Trainer decays every parameter whose name is not a bias or a norm weight,
/// which includes every LoRA A and B, so `weightDecay` applies to all of them.
// Unchecked Sendable: `step`, the hyperparameters and the moments change unguarded. An optimizer
// belongs to one trainer, which updates it on its own thread, one step at a time; checkpoints
// read it on that thread, between steps.
public final class AdamW: @unchecked Sendable {
    public var beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    /// Optimizer steps taken (torch's `state["step"]`).
    public internal(set) var step: Int = 0
    public let m: FloatBuffer, v: FloatBuffer

    public init(count: Int, weightDecay: Double = 0.01, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        m = FloatBuffer(shape: [count]); v = FloatBuffer(shape: [count])
    }

    /// One update of `params` [count] with `grads` [count] at learning rate `lr`.
    public func update(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, count: Int, lr: Double) {
        precondition(count == m.count, "AdamW state holds \(m.count) values, got \(count)")
        step += 1
        let t = Double(step)
        let decay = Float(1 - lr * weightDecay)
        let a1 = Float(1 - beta1), b2 = Float(beta2), a2 = Float(1 - beta2)
        let stepSize = Float(-(lr / (1 - pow(beta1, t))))
        let bc2 = Float((1 - pow(beta2, t)).squareRoot())
        let e = Float(eps)
        let mp = m.pointer, vp = v.pointer
        for i in 0..<count {
            let g = grads[i]
            var p = params[i]
            if weightDecay != 0 { p *= decay }
            let mi = mp[i] + a1 * (g - mp[i])
            let vi = vp[i] * b2 + a2 * g * g
            mp[i] = mi; vp[i] = vi
            let denom = vi.squareRoot() / bc2 + e
            params[i] = p + stepSize * mi / denom
        }
    }

    /// Restores the moments and step count (checkpoint resume).
    public func restore(step: Int, m: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        self.step = step
        self.m.pointer.update(from: m, count: self.m.count)
        self.v.pointer.update(from: v, count: self.v.count)
    }
}

/// Global gradient-norm clipping as `torch.nn.utils.clip_grad_norm_`: the L2 norm over all
/// gradients, then every gradient times min(1, maxNorm / (norm + 1e-6)). Returns the norm
/// before clipping (what transformers logs as `grad_norm`). `maxNorm <= 0` only measures.
@discardableResult
public func clipGradientNorm(_ grads: UnsafeMutablePointer<Float>, count: Int, maxNorm: Double) -> Double {
    var ss = 0.0
    for i in 0..<count { let g = Double(grads[i]); ss += g * g }
    let norm = Double(Float(ss.squareRoot()))
    if maxNorm > 0 {
        let coef = Float(min(1, maxNorm / (norm + 1e-6)))
        for i in 0..<count { grads[i] *= coef }
    }
    return norm
}

/// Learning-rate schedules of transformers' `get_scheduler`, as the multiplier of the base
/// rate for the update after `step` updates (so with warmup the first update uses lr 0, as HF does).
public enum LRSchedule: String, Sendable, CaseIterable, Equatable {
    case linear, constant, cosine

    /// lr of update number `step` (0-based) out of `total`, with `warmup` warmup updates.
    public func lr(base: Double, step: Int, total: Int, warmup: Int) -> Double {
        if step < warmup { return base * Double(step) / Double(max(1, warmup)) }
        switch self {
        case .constant: return base
        case .linear: return base * max(0, Double(total - step) / Double(max(1, total - warmup)))
        case .cosine:
            let progress = Double(step - warmup) / Double(max(1, total - warmup))
            return base * max(0, 0.5 * (1 + cos(Double.pi * 2 * 0.5 * progress)))
        }
    }
}
