import Foundation

/// A judge's calibration on some traits: each trait's figures and verdict, and the verdicts
/// behind them (`Calibration`, Docs/Judges.md "Calibration").
public struct CalibrationReport: Sendable, Equatable {
    public var judge: String
    public var set: String
    public var traits: [TraitCalibration]
    /// Verdicts read from the cache instead of asked.
    public var cached: Int
    /// Calls that failed (after the judge's own retries); their items count as unscored.
    public var failedCalls: Int = 0
    /// The last failed call's error, for messages.
    public var lastError: String?
    public var passed: Bool { traits.allSatisfy(\.passed) }
}

/// Scores a calibration set with a judge, through a verdict cache when given, at most
/// `maxInFlight` verdicts in progress; a failed call counts as unscored (and is not cached).
public struct Calibrator: Sendable {
    public var maxInFlight: Int
    public var thresholds: CalibrationThresholds

    public init(maxInFlight: Int = 16, thresholds: CalibrationThresholds = CalibrationThresholds()) {
        self.maxInFlight = max(1, maxInFlight); self.thresholds = thresholds
    }

    /// The figures of `judge` on each of `rubrics` (by trait name) over the set's items that
    /// band that trait. `progress(done, total)` after each verdict.
    public func calibrate(judge: any Judge, rubrics: [Rubric], set: CalibrationSet, cache: VerdictCache? = nil,
                          progress: (@Sendable (Int, Int) -> Void)? = nil) async throws(JudgeError) -> CalibrationReport {
        var work: [(rubric: Int, item: CalibrationItem)] = []
        for (r, rubric) in rubrics.enumerated() {
            for item in set.items(for: rubric.name) { work.append((r, item)) }
        }
        var verdicts = [[String: Verdict]](repeating: [:], count: rubrics.count)
        var cached = 0
        var ask: [(rubric: Int, item: CalibrationItem, key: String)] = []
        for w in work {
            let item = JudgeItem(rubric: rubrics[w.rubric], question: w.item.question, answer: w.item.answer)
            let key = VerdictCache.key(judge: judge, item: item)
            if let v = try cache?.get(key) { verdicts[w.rubric][w.item.id] = v; cached += 1 } else { ask.append((w.rubric, w.item, key)) }
        }
        let total = work.count
        progress?(cached, total)
        let limit = maxInFlight
        let results = await withTaskGroup(of: (Int, Result<Verdict, JudgeError>).self) { group in
            var next = 0
            var out: [(Int, Result<Verdict, JudgeError>)] = []
            func add(_ k: Int) {
                let a = ask[k]
                let item = JudgeItem(rubric: rubrics[a.rubric], question: a.item.question, answer: a.item.answer)
                group.addTask { await Self.verdict(judge, item, k) }
            }
            while next < min(limit, ask.count) { add(next); next += 1 }
            for await r in group {
                out.append(r)
                progress?(cached + out.count, total)
                if next < ask.count { add(next); next += 1 }
            }
            return out
        }
        var failed = 0
        var lastError: String?
        for (k, result) in results {
            let a = ask[k]
            switch result {
            case .success(let v):
                verdicts[a.rubric][a.item.id] = v
                try cache?.put(a.key, v, identity: judge.cacheIdentity)
            case .failure(let e):
                failed += 1
                lastError = e.description
            }
        }
        let traits = rubrics.enumerated().map { r, rubric in
            Calibration.evaluate(trait: rubric.name, set: set, verdicts: verdicts[r], thresholds: thresholds)
        }
        return CalibrationReport(judge: judge.id, set: set.source, traits: traits, cached: cached, failedCalls: failed, lastError: lastError)
    }

    private static func verdict(_ judge: any Judge, _ item: JudgeItem, _ k: Int) async -> (Int, Result<Verdict, JudgeError>) {
        do { return (k, .success(try await judge.judge(item))) } catch { return (k, .failure(error)) }
    }
}
