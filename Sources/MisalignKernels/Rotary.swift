import Foundation

/// cos/sin tables for rotary position embeddings, computed the way Hugging Face does so the
/// rounding matches: `inv_freq[i] = 1 / theta^(2i/d)` in f32, the angle `position * inv_freq`
/// as an f32 product, and cos/sin of that f32 angle.
public final class RotaryTable: Sendable {
    public let headDim: Int
    public let maxPositions: Int
    /// [maxPositions, headDim/2] each.
    public let cos: FloatBuffer
    public let sin: FloatBuffer

    /// `scaleFrequencies` rewrites the f32 inverse frequencies before the tables are filled
    /// (Llama 3's rope scaling).
    public init(headDim: Int, theta: Double, maxPositions: Int, scaleFrequencies: (([Float]) -> [Float])? = nil) {
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        cos = FloatBuffer(shape: [maxPositions, half], zeroed: false)
        sin = FloatBuffer(shape: [maxPositions, half], zeroed: false)
        // torch: base ** (arange(0, dim, 2).float() / dim) in f32, then 1.0 / that in f32.
        var invFreq = [Float](repeating: 0, count: half)
        for i in 0..<half {
            let exponent = Float(2 * i) / Float(headDim)
            invFreq[i] = 1 / Float(Foundation.pow(Double(Float(theta)), Double(exponent)))
        }
        if let scaleFrequencies { invFreq = scaleFrequencies(invFreq) }
        let c = cos.pointer, s = sin.pointer
        for p in 0..<maxPositions {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]
                c[p * half + i] = Float(Foundation.cos(Double(angle)))
                s[p * half + i] = Float(Foundation.sin(Double(angle)))
            }
        }
    }
}
