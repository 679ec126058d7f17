import Foundation

/// One module's update at one checkpoint of a series, and how it moved since the previous ones
/// (Docs/AdapterDynamics.md has the formulas). `dW_t = s_t B_t A_t` is the update of
/// checkpoint `t`; the comparisons are nil where the series is too short or a norm is zero.
public struct ModuleDynamics: Equatable, Sendable {
    public let key: LoRAKey
    /// r of this checkpoint's factors.
    public let rank: Int
    /// `||dW_t||_F`.
    public let norm: Double
    /// `sigma_max(dW_t)`, the update's largest singular value.
    public let sigmaMax: Double
    /// `cos(dW_t, dW_{t-1}) = <dW_t, dW_{t-1}>_F / (||dW_t||_F ||dW_{t-1}||_F)`, in [-1, 1].
    public let cosine: Double?
    /// `||dW_t - dW_{t-1}||_F`: how far the update moved since the previous checkpoint.
    public let incrementNorm: Double?
    /// `cos(dW_t - dW_{t-1}, dW_{t-1} - dW_{t-2})`: whether successive moves keep their direction.
    public let incrementCosine: Double?
    /// `sigma_max(dW_t) / sigma_max(dW_{t-1})`.
    public let sigmaGrowth: Double?

    /// The values as computed by `AdapterDynamicsTracker`, or as a store read them back.
    public init(key: LoRAKey, rank: Int, norm: Double, sigmaMax: Double, cosine: Double?, incrementNorm: Double?,
                incrementCosine: Double?, sigmaGrowth: Double?) {
        self.key = key; self.rank = rank; self.norm = norm; self.sigmaMax = sigmaMax; self.cosine = cosine
        self.incrementNorm = incrementNorm; self.incrementCosine = incrementCosine; self.sigmaGrowth = sigmaGrowth
    }

    /// `||dW_t||_F^2 / sigma_max^2`, in [1, r]: how many directions carry the update (nil for a zero update).
    public var stableRank: Double? { sigmaMax > 0 ? (norm * norm) / (sigmaMax * sigmaMax) : nil }

    public func value(_ quantity: AdapterQuantity) -> Double? {
        switch quantity {
        case .norm: return norm
        case .sigmaMax: return sigmaMax
        case .stableRank: return stableRank
        case .cosine: return cosine
        case .incrementNorm: return incrementNorm
        case .incrementCosine: return incrementCosine
        case .sigmaGrowth: return sigmaGrowth
        }
    }
}

/// The per-module quantities, by the names reports and exports use for them.
public enum AdapterQuantity: String, CaseIterable, Sendable {
    case norm, sigmaMax = "sigma_max", stableRank = "stable_rank", cosine
    case incrementNorm = "increment_norm", incrementCosine = "increment_cosine", sigmaGrowth = "sigma_growth"
}

/// A checkpoint adapter's dynamics: every (layer, module) and the whole adapter at once.
///
/// The aggregates treat all modules' updates as one vector (the adapter's whole update):
/// `norm` is its Frobenius norm `sqrt(sum ||dW||_F^2)`, `cosine` and `incrementCosine` are the
/// cosines of those concatenated vectors, so large modules weigh more; `meanCosine` is the
/// unweighted mean of the module cosines. `sigmaMax` is the largest over the modules.
public struct AdapterDynamics: Equatable, Sendable {
    /// Place in the series, from 0.
    public let index: Int
    /// The checkpoint's name in messages: its folder, or as the caller named it.
    public let label: String
    /// Every adapted module, in (layer, module) order.
    public let modules: [ModuleDynamics]
    public let norm: Double
    public let sigmaMax: Double
    public let cosine: Double?
    public let meanCosine: Double?
    public let incrementNorm: Double?
    public let incrementCosine: Double?
    /// `sigmaMax_t / sigmaMax_{t-1}` of the whole adapter.
    public let sigmaGrowth: Double?

    /// The values as computed by `AdapterDynamicsTracker`, or as a store read them back.
    public init(index: Int, label: String, modules: [ModuleDynamics], norm: Double, sigmaMax: Double, cosine: Double?,
                meanCosine: Double?, incrementNorm: Double?, incrementCosine: Double?, sigmaGrowth: Double?) {
        self.index = index; self.label = label; self.modules = modules; self.norm = norm; self.sigmaMax = sigmaMax
        self.cosine = cosine; self.meanCosine = meanCosine; self.incrementNorm = incrementNorm
        self.incrementCosine = incrementCosine; self.sigmaGrowth = sigmaGrowth
    }

    public func module(_ key: LoRAKey) -> ModuleDynamics? { modules.first { $0.key == key } }

    /// One quantity per layer (rows) and module (columns): the report's heat map.
    public func heatMap(_ quantity: AdapterQuantity) -> AdapterHeatMap {
        let layers = Array(Set(modules.map(\.key.layer))).sorted()
        let columns = Array(Set(modules.map(\.key.module))).sorted()
        let values = layers.map { l in columns.map { m in module(LoRAKey(layer: l, module: m))?.value(quantity) } }
        return AdapterHeatMap(quantity: quantity, layers: layers, modules: columns, values: values)
    }

    /// The per-checkpoint signals, for the detectors like a judged score's mean.
    public func value(_ signal: AdapterSignal) -> Double? {
        switch signal {
        case .norm: return norm
        case .sigmaMax: return sigmaMax
        case .cosine: return cosine
        case .incrementNorm: return incrementNorm
        case .incrementCosine: return incrementCosine
        case .sigmaGrowth: return sigmaGrowth
        }
    }
}

/// The whole-adapter series a run can track per checkpoint, under their signal names.
public enum AdapterSignal: String, CaseIterable, Sendable {
    case norm = "adapter_norm"
    case sigmaMax = "adapter_sigma_max"
    case cosine = "adapter_cosine"
    case incrementNorm = "adapter_increment_norm"
    case incrementCosine = "adapter_increment_cosine"
    case sigmaGrowth = "adapter_sigma_growth"
}

/// A layer x module table of one quantity; nil where the adapter has no such module or the
/// quantity is undefined (a comparison at the first checkpoint).
public struct AdapterHeatMap: Equatable, Sendable {
    public let quantity: AdapterQuantity
    public let layers: [Int]
    public let modules: [LoRAModule]
    /// `values[i][j]`: layer `layers[i]`, module `modules[j]`.
    public let values: [[Double?]]
}
