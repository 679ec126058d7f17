import Foundation

/// The lag across fine-tuning seeds of one dataset: is its sign reproducible?
public struct SeedSummary: Equatable, Sendable {
    public var dataset: String?
    /// Each seed's point-estimate lag (nil: an onset was missing).
    public var lags: [(seed: Int?, lag: Double?)]
    public var medianLag: Double?
    public var positive: Int
    public var negative: Int
    /// Exact two-sided sign test of "lag is as likely negative as positive" (zero lags dropped).
    public var signTestP: Double?

    public static func == (a: SeedSummary, b: SeedSummary) -> Bool {
        a.dataset == b.dataset && a.medianLag == b.medianLag && a.positive == b.positive && a.negative == b.negative
            && a.signTestP == b.signTestP && a.lags.map(\.lag) == b.lags.map(\.lag) && a.lags.map(\.seed) == b.lags.map(\.seed)
    }

    public init(dataset: String?, reports: [OnsetReport]) {
        self.dataset = dataset
        lags = reports.map { ($0.seed, $0.lagSteps) }
        let v = lags.compactMap(\.lag)
        medianLag = v.isEmpty ? nil : median(v)
        positive = v.filter { $0 > 0 }.count
        negative = v.filter { $0 < 0 }.count
        signTestP = positive + negative > 0 ? signTest(positive: positive, negative: negative) : nil
    }
}

/// Exact two-sided binomial sign test with p = 1/2: `min(1, 2 P(X <= min(k, n - k)))`.
/// Terms are summed in log space so large n does not overflow.
public func signTest(positive: Int, negative: Int) -> Double {
    let n = positive + negative
    precondition(positive >= 0 && negative >= 0 && n > 0, "sign test needs at least one non-zero difference")
    let k = min(positive, negative)
    var total = 0.0
    for i in 0...k {
        let logC = lgamma(Double(n + 1)) - lgamma(Double(i + 1)) - lgamma(Double(n - i + 1))
        total += exp(logC - Double(n) * log(2.0))
    }
    return min(1, 2 * total)
}

/// One row of the across-datasets table.
public struct DatasetRow: Equatable, Sendable {
    public var dataset: String
    public var runs: Int
    /// Medians across the dataset's runs of each signal's consensus onset (steps).
    public var medianOnsets: [String: Double]
    public var seeds: SeedSummary
    /// Mean over runs of P(lag > 0) from each run's bootstrap.
    public var meanProbabilityLagPositive: Double?
}

/// Groups reports by dataset for a comparison table (e.g. medical vs math).
public func compareDatasets(_ reports: [OnsetReport]) -> [DatasetRow] {
    let names = Array(Set(reports.map { $0.dataset ?? "-" })).sorted()
    return names.map { name in
        let mine = reports.filter { ($0.dataset ?? "-") == name }
        var med: [String: Double] = [:]
        for s in mine.first?.signals.map(\.signal) ?? [] {
            let v = mine.compactMap { $0.signal(s)?.consensusStep }
            if !v.isEmpty { med[s] = median(v) }
        }
        let p = mine.compactMap(\.probabilityLagPositive)
        return DatasetRow(dataset: name, runs: mine.count, medianOnsets: med,
                          seeds: SeedSummary(dataset: name, reports: mine),
                          meanProbabilityLagPositive: p.isEmpty ? nil : p.reduce(0, +) / Double(p.count))
    }
}
