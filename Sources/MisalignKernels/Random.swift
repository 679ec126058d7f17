import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014; the seeding generator of Java's `SplittableRandom`
/// and of xoshiro): 64-bit state, `state += 0x9E3779B97F4A7C15` then a fixed avalanche. Tiny,
/// fast, passes BigCrush, and trivially reproducible across platforms, which is what a
/// documented bootstrap needs. Resample b of a bootstrap with seed s uses
/// `SplitMix64(seed: s, stream: b)`, so results do not depend on thread scheduling.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }
    /// An independent stream: the seed mixed with the stream index through one SplitMix step.
    public init(seed: UInt64, stream: UInt64) {
        var g = SplitMix64(seed: seed ^ (stream &* 0xD1B54A32D192ED03))
        state = g.next()
    }
    public mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    /// Uniform integer in `0..<n` (Lemire's multiply-shift; the bias is below 2^-32 for n < 2^32).
    public mutating func below(_ n: Int) -> Int {
        Int((UInt64(truncatingIfNeeded: next() >> 32) &* UInt64(n)) >> 32)
    }
    /// Uniform double in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// Standard normal (Box-Muller), for simulations.
    public mutating func normal() -> Double {
        let u = max(uniform(), 0x1p-60), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }

    /// The generator of one generated sample: the run seed mixed with a hash of the prompt's
    /// tokens, on the stream of the sample index, so (seed, prompt, sample) fixes the text.
    public static func forSample(seed: UInt64, prompt: [Int32], sample: Int) -> SplitMix64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 // FNV-1a over the prompt tokens
        for t in prompt { h = (h ^ UInt64(UInt32(bitPattern: t))) &* 0x100_0000_01B3 }
        return SplitMix64(seed: seed ^ h, stream: UInt64(sample))
    }
}
