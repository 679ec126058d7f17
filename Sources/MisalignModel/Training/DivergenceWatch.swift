import Foundation

/// Notices a run that has blown up while its numbers are still finite, so it stops instead of
/// training on (and checkpointing) a wrecked adapter. Three signs, none tied to a model size:
///
/// - The model's output collapsed to the uniform distribution: the loss is ln(vocab) and the
///   gradient exactly 0. This is what a too-large learning rate leads to: the adapter's
///   products grow until a layer's sum of squares overflows, RMSNorm then outputs zeros, every
///   logit is 0, and nothing can learn any more.
/// - The loss climbed back to the uniform-guess level ln(vocab) after having been at least one
///   nat below it: a model that had learned something now knows less than a coin toss.
/// - The adapter's weights are not finite, or their norm grew a hundredfold over its size at
///   the start of the run (or PEFT's initial size, when larger). AdamW moves each weight by
///   at most about the learning rate per step, so LoRA's learning rates (1e-5 to 1e-3) change
///   the norm by a small factor over a whole run. A hundredfold means weights of RMS about
///   100 / sqrt(3 (in + out)) (0.5 for a 7B model, 5 for a 64-wide toy), whose product B A,
///   times alpha / r, dwarfs the base weights (RMS about 0.02): the model is wrecked.
public struct DivergenceWatch: Sendable {
    /// ln(vocab): the loss of a model that spreads its probability evenly.
    public let uniformLoss: Double
    /// The adapter norm past which the weights count as exploded.
    public let normLimit: Double
    public let startNorm: Double
    public private(set) var bestLoss = Double.infinity

    /// How many times its starting (or PEFT-initial) size the adapter norm may grow.
    public static let normGrowth = 100.0

    public init(vocabSize: Int, parameters: LoRAParameters) {
        uniformLoss = log(Double(max(vocabSize, 2)))
        startNorm = Self.norm(parameters)
        // PEFT's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0, so |A|^2 is about r/3 per module.
        let peftNorm = parameters.slots.values.reduce(0.0) { $0 + Double($1.rank) / 3 }.squareRoot()
        normLimit = Self.normGrowth * max(startNorm.isFinite ? startNorm : 0, peftNorm)
    }

    /// The L2 norm of all adapter weights (infinite or NaN when any weight is).
    public static func norm(_ p: LoRAParameters) -> Double {
        var ss = 0.0
        let v = p.values.pointer
        for i in 0..<p.count { let x = Double(v[i]); ss += x * x }
        return ss.squareRoot()
    }

    /// The loss and gradient norm of the current weights (before their update): what is wrong, or nil.
    public mutating func check(loss: Double, gradNorm: Double) -> String? {
        defer { bestLoss = min(bestLoss, loss) }
        let atUniform = loss >= uniformLoss - max(0.01 * uniformLoss, 1e-3)
        let u = String(format: "%.4f", uniformLoss), l = String(format: "%.4f", loss)
        if atUniform && gradNorm <= 1e-12 {
            return "the loss is \(l), the uniform-guess level ln(vocab) = \(u), and the gradient is 0: the model's output collapsed and nothing can train any more"
        }
        if atUniform && bestLoss <= uniformLoss - 1 {
            return "the loss rose to \(l), the uniform-guess level ln(vocab) = \(u), after reaching \(String(format: "%.4f", bestLoss))"
        }
        return nil
    }

    /// The adapter after an update: what is wrong, or nil.
    public func check(parameterNorm n: Double) -> String? {
        if !n.isFinite { return "the adapter weights are not finite (NaN or Inf)" }
        if n > normLimit {
            return "the adapter weight norm grew to \(String(format: "%.3g", n)) from \(String(format: "%.3g", startNorm)) at the start"
                + " (more than \(Int(Self.normGrowth))x its starting or initial size)"
        }
        return nil
    }
}
