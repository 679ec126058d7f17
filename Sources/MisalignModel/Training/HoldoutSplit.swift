import Foundation
import MisalignKernels

/// The seeded split of a dataset's examples into those trained on and those held out
/// (`training.holdout`, `misalign train --holdout`), a function of (example count, fraction,
/// seed) alone, so a resumed run (even after `kill -9`) holds out the same examples.
///
/// The procedure, exactly (Tests/Fixtures/training/make_holdout_reference.py implements it
/// independently):
/// 1. `n` is the number of usable examples (after invalid lines are skipped, in file order);
///    `heldOut = ceil(fraction * n)` in double arithmetic, as Hugging Face `train_test_split`
///    sizes its test split; `n - heldOut` are trained on.
/// 2. A permutation of `0..<n` by Fisher-Yates from the end: for i = n-1 down to 1, swap
///    positions i and `below(i + 1)` of `SplitMix64(seed: seed, stream: 0x401D)` (the stream
///    differs from the epoch orders' `0xDA7A + epoch`, so the split and the orders are unrelated).
/// 3. The first `heldOut` entries of the permutation are held out; both parts keep file order.
///
/// It cannot reproduce `train_test_split`'s own choice: that draws a numpy `PCG64` permutation,
/// and the study called it without a seed (numpy's global state picked it), so no seed recovers it.
public struct HoldoutSplit: Equatable, Sendable {
    /// Indices of the examples trained on and held out, each in file order.
    public let train: [Int]
    public let heldOut: [Int]

    static let stream: UInt64 = 0x401D

    /// Splits `count` examples; `fraction` 0 holds out nothing. Throws
    /// `TrainingError.invalidSetting(name: "holdout", ...)` when `fraction` is outside [0, 1)
    /// or a side would be empty.
    public init(count: Int, fraction: Double, seed: UInt64) throws {
        try Self.check(fraction)
        guard fraction > 0 else { train = Array(0..<count); heldOut = []; return }
        let n = Int((fraction * Double(count)).rounded(.up))
        guard count - n >= 1 else {
            throw TrainingError.invalidSetting(name: "holdout", detail: "\(fraction) of \(count) examples holds out \(n), leaving none to train on; "
                                               + "use a smaller fraction or more data (at least 1 example on each side)")
        }
        var rng = SplitMix64(seed: seed, stream: Self.stream)
        var idx = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { idx.swapAt(i, rng.below(i + 1)) }
        heldOut = idx[..<n].sorted()
        train = idx[n...].sorted()
    }

    /// The bounds of a holdout fraction: 0 <= fraction < 1.
    public static func check(_ fraction: Double) throws {
        guard fraction.isFinite, fraction >= 0, fraction < 1 else {
            throw TrainingError.invalidSetting(name: "holdout", detail: "is \(fraction); must be in [0, 1) (0.1 holds out 10% of the examples)")
        }
    }
}

/// The loss of the held-out examples at one checkpoint: the mean cross-entropy over their
/// trained-on (assistant) tokens, masked and truncated as in training, without dropout.
public struct HeldOutLoss: Equatable, Sendable {
    public var loss: Double
    /// Target tokens it averages over.
    public var tokens: Int
    public init(loss: Double, tokens: Int) { self.loss = loss; self.tokens = tokens }
}
