import Foundation

/// Computes `AdapterDynamics` for the checkpoints of one run, in order, one adapter at a time:
/// each is compared with the two before it, which the tracker holds (by reference, no copy),
/// together with a few numbers per module carried from step to step. So a series reads every
/// checkpoint once and holds at most three adapters.
///
/// Per module and checkpoint it computes, in float64 and without forming any `dW`, the Gram
/// products `<dW_t, dW_t>`, `<dW_t, dW_{t-1}>`, `<dW_t, dW_{t-2}>` (Docs/AdapterDynamics.md);
/// everything else follows from them and the ones carried. A checkpoint that throws leaves the
/// tracker as it was.
public struct AdapterDynamicsTracker: Sendable {
    /// What checkpoint t-1 leaves for checkpoint t, per module.
    struct Carry: Sendable {
        var selfInner: Double          // <dW, dW>
        var innerWithPrevious: Double? // <dW, dW_prev>
        var incrementSquared: Double?  // ||dW - dW_prev||^2
        var magnitude: Double          // s ||B||_F ||A||_F, the scale of the rounding in the products
        var sigmaMax: Double
    }
    struct Totals: Sendable {
        var selfInner: Double, incrementSquared: Double?, sigmaMax: Double
    }
    private var window: [(adapter: LoRAAdapter, label: String)] = []  // the last two, oldest first
    private var carry: [LoRAKey: Carry] = [:]
    private var totals: Totals?
    /// Checkpoints appended so far.
    public private(set) var count = 0

    public init() {}

    /// The dynamics of `adapter` as the next checkpoint of the series. `label` names it in the
    /// result and in errors (default: its folder, else "checkpoint N").
    public mutating func append(_ adapter: LoRAAdapter, label: String? = nil) throws(AdapterDynamicsError) -> AdapterDynamics {
        let label = label ?? adapter.path ?? "checkpoint \(count)"
        let keys = adapter.keys
        guard !keys.isEmpty else { throw .noModules(checkpoint: label) }
        if let previous = window.last {
            let now = Set(keys), before = Set(previous.adapter.keys)
            if let k = now.subtracting(before).min() {
                throw .moduleSetChanged(checkpoint: label, other: previous.label, module: k.peftPrefix, inCheckpoint: true)
            }
            if let k = before.subtracting(now).min() {
                throw .moduleSetChanged(checkpoint: label, other: previous.label, module: k.peftPrefix, inCheckpoint: false)
            }
        }
        var modules: [ModuleDynamics] = [], nextCarry: [LoRAKey: Carry] = [:]
        var sumSelf = 0.0, sumWithPrevious = 0.0, sumIncrement = 0.0, sumIncrementInner = 0.0
        var sigmaMax = 0.0
        var workspace = GramWorkspace()
        for key in keys {
            // dW_t first, then dW_{t-1} and dW_{t-2} where the series has them.
            var factors = [(pair: try adapter.checkedPair(key, label: label), scale: adapter.updateScale)]
            for w in window.reversed() { factors.append((try w.adapter.checkedPair(key, label: w.label), w.adapter.updateScale)) }
            let shape = [factors[0].pair.b.shape[0], factors[0].pair.a.shape[1]]
            if let previous = factors.dropFirst().first, [previous.pair.b.shape[0], previous.pair.a.shape[1]] != shape {
                throw .shapeChanged(checkpoint: label, other: window.last!.label, module: key.peftPrefix,
                                    shape: shape, otherShape: [previous.pair.b.shape[0], previous.pair.a.shape[1]])
            }
            let products = UpdateProducts(factors, workspace: &workspace)
            let n2 = products.inner[0], magnitude = products.magnitude
            guard n2.isFinite, magnitude.isFinite else { throw .nonFinite(checkpoint: label, module: key.peftPrefix) }
            let sigma = products.sigmaMaxSquared.squareRoot()
            var c = Carry(selfInner: n2, innerWithPrevious: nil, incrementSquared: nil, magnitude: magnitude, sigmaMax: sigma)
            var cosine: Double? = nil, incrementNorm: Double? = nil, incrementCosine: Double? = nil, growth: Double? = nil
            if factors.count >= 2, let was = carry[key] {
                let g1 = products.inner[1]
                c.innerWithPrevious = g1
                cosine = Self.cosine(g1, n2, was.selfInner)
                // ||dW_t - dW_{t-1}||^2, zero when below the products' rounding.
                let floor = Self.roundingFloor(magnitude + was.magnitude, out: shape[0], inDim: shape[1])
                var inc2 = n2 - 2 * g1 + was.selfInner
                if inc2 <= floor { inc2 = 0 }
                c.incrementSquared = inc2
                incrementNorm = inc2.squareRoot()
                growth = was.sigmaMax > 0 ? sigma / was.sigmaMax : nil
                sumWithPrevious += g1
                sumIncrement += inc2
                if factors.count == 3, let was12 = was.innerWithPrevious, let wasInc2 = was.incrementSquared {
                    // <dW_t - dW_{t-1}, dW_{t-1} - dW_{t-2}>
                    let g2 = products.inner[2]
                    let inner = inc2 > 0 && wasInc2 > 0 ? g1 - g2 - was.selfInner + was12 : 0
                    incrementCosine = Self.cosine(inner, inc2, wasInc2)
                    sumIncrementInner += inner
                }
            }
            nextCarry[key] = c
            sumSelf += n2
            sigmaMax = max(sigmaMax, sigma)
            modules.append(ModuleDynamics(key: key, rank: products.rank, norm: n2.squareRoot(), sigmaMax: sigma, cosine: cosine,
                                          incrementNorm: incrementNorm, incrementCosine: incrementCosine, sigmaGrowth: growth))
        }
        var nextTotals = Totals(selfInner: sumSelf, incrementSquared: nil, sigmaMax: sigmaMax)
        var cosine: Double? = nil, meanCosine: Double? = nil, incrementNorm: Double? = nil
        var incrementCosine: Double? = nil, growth: Double? = nil
        if let was = totals {
            nextTotals.incrementSquared = sumIncrement
            cosine = Self.cosine(sumWithPrevious, sumSelf, was.selfInner)
            let cosines = modules.compactMap(\.cosine)
            meanCosine = cosines.isEmpty ? nil : cosines.reduce(0, +) / Double(cosines.count)
            incrementNorm = sumIncrement.squareRoot()
            if window.count == 2, let wasInc2 = was.incrementSquared {
                incrementCosine = Self.cosine(sumIncrementInner, sumIncrement, wasInc2)
            }
            growth = was.sigmaMax > 0 ? sigmaMax / was.sigmaMax : nil
        }
        let result = AdapterDynamics(index: count, label: label, modules: modules, norm: sumSelf.squareRoot(), sigmaMax: sigmaMax,
                                     cosine: cosine, meanCosine: meanCosine, incrementNorm: incrementNorm,
                                     incrementCosine: incrementCosine, sigmaGrowth: growth)
        // Commit only now: a throw above leaves the tracker unchanged.
        window.append((adapter, label))
        if window.count > 2 { window.removeFirst() }
        carry = nextCarry
        totals = nextTotals
        count += 1
        return result
    }

    /// `inner / sqrt(a b)` clamped to [-1, 1]; nil when either squared norm is zero.
    static func cosine(_ inner: Double, _ a: Double, _ b: Double) -> Double? {
        guard a > 0, b > 0 else { return nil }
        return min(1, max(-1, inner / (a * b).squareRoot()))
    }

    /// A bound on the float64 rounding of `<dW_t, dW_t> - 2 <dW_t, dW_{t-1}> + <dW_{t-1}, dW_{t-1}>`:
    /// each Gram entry sums `out` or `in` products, so `16 sqrt(out + in) eps (m_t + m_{t-1})^2`
    /// with `m = s ||B||_F ||A||_F`. A squared increment below it is indistinguishable from zero.
    static func roundingFloor(_ magnitudes: Double, out: Int, inDim: Int) -> Double {
        16 * Double(out + inDim).squareRoot() * Double.ulpOfOne * magnitudes * magnitudes
    }
}

extension AdapterDynamics {
    /// The dynamics of each adapter of an ordered series of checkpoints (oldest first).
    public static func series(_ adapters: [LoRAAdapter]) throws(AdapterDynamicsError) -> [AdapterDynamics] {
        var tracker = AdapterDynamicsTracker()
        var out: [AdapterDynamics] = []
        for adapter in adapters { out.append(try tracker.append(adapter)) }
        return out
    }

    /// The dynamics of the PEFT adapter folders `directories` (oldest first), reading each once
    /// and holding at most three at a time. `progress` is called after each with (done, total).
    /// Throws `LoRAError` for a folder that does not read, `AdapterDynamicsError` for adapters
    /// that do not compare.
    public static func series(directories: [URL], progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> [AdapterDynamics] {
        var tracker = AdapterDynamicsTracker()
        var out: [AdapterDynamics] = []
        for url in directories {
            out.append(try tracker.append(try LoRAAdapter(directory: url)))
            progress?(out.count, directories.count)
        }
        return out
    }
}
