import Foundation
import Synchronization
import MisalignKernels

/// Cluster bootstrap over questions (Davison & Hinkley 1997, sec. 3.8): answers to one
/// question are correlated across checkpoints, samples and judges, so the unit resampled is
/// the question, drawn with replacement, and every signal's curve is rebuilt from the same draw
/// (keeping the cross-signal correlation the lag depends on). Signals may cover different
/// questions (a trait judged on its own question set): the draw is then stratified by the set
/// of signals sharing each question, each stratum drawing its own size with replacement within
/// itself, in the order of its first question (`Strata`), so every signal's curve keeps its
/// number of questions. With one stratum the draw is the unstratified one, call for call.
/// Each resample re-runs every rule; intervals are percentile intervals (`confidence`, e.g.
/// 2.5%-97.5%) over the resamples in which the quantity is defined.
public enum Bootstrap {
    /// Reports resamples finished so far and the total, from the worker threads (at most once
    /// per resample; a display should throttle).
    public typealias Progress = @Sendable (_ done: Int, _ total: Int) -> Void

    /// Point estimates and intervals for every signal of one run. `progress`, when given, is
    /// called as resamples finish.
    public static func run(tables: [CheckpointTable], config: OnsetConfig,
                           progress: Progress? = nil) throws(ChangePointError) -> OnsetReport {
        precondition(tables.count == config.signals.count, "one table per signal")
        guard config.resamples >= 0 else { throw .invalidParameter(name: "resamples", value: "\(config.resamples)", reason: "must be >= 0") }
        guard config.confidence > 0 && config.confidence < 1 else {
            throw .invalidParameter(name: "confidence", value: "\(config.confidence)", reason: "must be in (0, 1)")
        }
        let strata = Strata(tables: tables)
        let nq = strata.questions.count
        // Point estimate on the observed curves.
        var signals: [SignalOnset] = []
        for (t, spec) in zip(tables, config.signals) {
            signals.append(try OnsetAnalysis.onsets(t.curve(weights: .init(repeating: 1, count: t.questions.count)), steps: t.steps, spec: spec, config: config))
        }
        var report = OnsetReport(dataset: nil, seed: nil, signals: signals, lagSteps: OnsetAnalysis.lag(signals, config),
                                 lagInterval: nil, probabilityLagPositive: nil, resamples: config.resamples)
        let b = config.resamples
        guard b > 0 else { return report }

        // results[r * ns + s]: consensus onset of signal s in resample r (NaN: none).
        let ns = tables.count
        let results = UnsafeMutableBufferPointer<Double>.allocate(capacity: b * ns)
        defer { results.deallocate() }
        results.initialize(repeating: .nan)
        let failure = ErrorBox()
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        let chunk = (b + workers - 1) / workers
        let out = SendableBuffer(results)
        let counter = ProgressCounter()
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = w * chunk, hi = min(b, lo + chunk)
            if lo >= hi { return }
            var weights = [Double](repeating: 0, count: nq)
            var own = tables.map { [Double](repeating: 0, count: $0.questions.count) }
            for r in lo..<hi {
                var rng = SplitMix64(seed: config.seed, stream: UInt64(r))
                strata.draw(&weights, &rng)
                for (s, t) in tables.enumerated() {
                    do throws(ChangePointError) {
                        let w = strata.weights(of: s, from: weights, into: &own[s])
                        out.base[r * ns + s] = try OnsetAnalysis.consensus(t.curve(weights: w), steps: t.steps, spec: config.signals[s], config: config)
                    } catch { failure.set(error); return }
                }
                if let progress { progress(counter.increment(), b) }
            }
        }
        if let e = failure.error { throw e }

        let alpha = (1 - config.confidence) / 2 * 100
        func interval(_ v: [Double]) -> BootstrapInterval? {
            let ok = v.filter { !$0.isNaN }.sorted()
            guard !ok.isEmpty else { return nil }
            return BootstrapInterval(low: percentile(ok, alpha), high: percentile(ok, 100 - alpha), definedFraction: Double(ok.count) / Double(v.count))
        }
        for s in 0..<ns {
            report.signals[s].interval = interval((0..<b).map { results[$0 * ns + s] })
        }
        if let li = config.signals.firstIndex(where: { $0.name == config.lagSignal }),
           let hi = config.signals.firstIndex(where: { $0.name == config.leadSignal }) {
            let lags = (0..<b).map { results[$0 * ns + li] - results[$0 * ns + hi] }
            report.lagInterval = interval(lags)
            let ok = lags.filter { !$0.isNaN }
            if !ok.isEmpty { report.probabilityLagPositive = Double(ok.filter { $0 > 0 }.count) / Double(ok.count) }
        }
        return report
    }
}

/// The questions of a bootstrap's tables and their strata: questions covered by the same set
/// of tables (signals) form a stratum.
struct Strata: Sendable {
    /// Every table's questions, sorted.
    let questions: [String]
    /// Global indices of each stratum's questions, ascending; strata by first question.
    let members: [[Int]]
    /// `rows[t][i]`: the global index of table t's question i; nil where table t covers every question.
    let rows: [[Int]?]

    init(tables: [CheckpointTable]) {
        let all = Array(Set(tables.flatMap(\.questions))).sorted()
        let index = Dictionary(uniqueKeysWithValues: all.enumerated().map { ($1, $0) })
        var covered = [[Int]](repeating: [], count: all.count)
        for (t, table) in tables.enumerated() { for q in table.questions { covered[index[q]!].append(t) } }
        var byKey: [[Int]: [Int]] = [:]
        for g in all.indices { byKey[covered[g], default: []].append(g) }
        questions = all
        members = byKey.values.sorted { $0[0] < $1[0] }
        rows = tables.map { $0.questions == all ? nil : $0.questions.map { index[$0]! } }
    }

    /// One resample: each stratum draws its size with replacement within itself; `weights[g]`
    /// counts question g's draws.
    func draw(_ weights: inout [Double], _ rng: inout SplitMix64) {
        for i in weights.indices { weights[i] = 0 }
        for m in members {
            let n = m.count
            for _ in 0..<n { weights[m[rng.below(n)]] += 1 }
        }
    }

    /// Table t's weights (one per its question) from the global ones.
    func weights(of t: Int, from global: [Double], into buffer: inout [Double]) -> [Double] {
        guard let r = rows[t] else { return global }
        for i in r.indices { buffer[i] = global[r[i]] }
        return buffer
    }
}

/// Lets the workers write disjoint slots of one buffer.
// Unchecked Sendable: each worker writes only the slots of its own resamples
// (`r * ns + s` for r in its chunk), and the buffer is read only after `concurrentPerform`
// has joined every worker.
struct SendableBuffer: @unchecked Sendable {
    let base: UnsafeMutableBufferPointer<Double>
    init(_ b: UnsafeMutableBufferPointer<Double>) { base = b }
}

/// Resamples finished across workers.
final class ProgressCounter: Sendable {
    private let value = Mutex(0)
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
}

/// The first error any worker hit.
final class ErrorBox: Sendable {
    private let stored = Mutex<ChangePointError?>(nil)
    func set(_ e: ChangePointError) { stored.withLock { if $0 == nil { $0 = e } } }
    var error: ChangePointError? { stored.withLock { $0 } }
}
