import Foundation

/// Several judges per verdict. The members run concurrently; every member's verdict is kept
/// in `members`, and the ensemble's score aggregates the members that scored.
public struct EnsembleJudge: Judge {
    public enum Aggregation: Sendable, Equatable {
        case mean
        case median
        /// The named member's score; the others are kept for agreement analysis only.
        case primary(String)
    }

    public let members: [any Judge]
    public let aggregation: Aggregation
    public let name: String

    public init(name: String = "ensemble", members: [any Judge], aggregation: Aggregation = .mean) {
        self.name = name; self.members = members; self.aggregation = aggregation
    }

    public var id: String { name }

    public var cacheIdentity: String {
        let agg: String
        switch aggregation {
        case .mean: agg = "mean"
        case .median: agg = "median"
        case .primary(let p): agg = "primary=\(p)"
        }
        return "ensemble|\(agg)|" + members.map(\.cacheIdentity).joined(separator: "||")
    }

    public func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
        let start = Date()
        let members = self.members
        let finished = await withTaskGroup(of: (Int, Result<Verdict, JudgeError>).self,
                                           returning: [(Int, Result<Verdict, JudgeError>)].self) { group in
            for (i, m) in members.enumerated() {
                group.addTask { (i, await Self.outcome(m, item)) }
            }
            var all: [(Int, Result<Verdict, JudgeError>)] = []
            for await r in group { all.append(r) }
            return all
        }
        let results = finished.sorted { $0.0 < $1.0 }.map(\.1)
        // A failed member fails the ensemble: a verdict missing a member would be cached and
        // never completed.
        let verdicts = try results.map { (r) throws(JudgeError) -> Verdict in try r.get() }
        var v = try Self.combine(verdicts, aggregation: aggregation, name: id, trait: item.rubric.name, rubricHash: item.rubric.sha256)
        v.latency = Date().timeIntervalSince(start)
        return v
    }

    /// Aggregates members' verdicts into one (also used to build ensemble rows after a run).
    public static func combine(_ verdicts: [Verdict], aggregation: Aggregation, name: String, trait: String,
                               rubricHash: String) throws(JudgeError) -> Verdict {
        let scored = verdicts.filter { $0.status == .ok }.compactMap(\.score)
        var v = Verdict(judge: name, trait: trait, score: nil, status: .ok, rubricHash: rubricHash,
                        inputTokens: verdicts.map(\.inputTokens).reduce(0, +), outputTokens: verdicts.map(\.outputTokens).reduce(0, +),
                        latency: verdicts.map(\.latency).max() ?? 0, attempts: verdicts.map(\.attempts).reduce(0, +), members: verdicts)
        switch aggregation {
        case .mean where !scored.isEmpty:
            v.score = scored.reduce(0, +) / Double(scored.count); v.detail = "mean of \(scored.count) of \(verdicts.count)"
        case .median where !scored.isEmpty:
            let s = scored.sorted()
            v.score = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
            v.detail = "median of \(scored.count) of \(verdicts.count)"
        case .primary(let p):
            guard let m = verdicts.first(where: { $0.judge == p }) else {
                throw .invalidInput("ensemble primary `\(p)` is not a member (\(verdicts.map(\.judge).joined(separator: ", ")))")
            }
            v.score = m.score; v.status = m.status; v.detail = "primary \(p)"
        default:
            // No member scored: report the most common non-score.
            let counts = Dictionary(grouping: verdicts.map(\.status), by: { $0 }).mapValues(\.count)
            v.status = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key.rawValue > $1.key.rawValue) }?.key ?? .unparseable
            v.detail = "no member scored"
        }
        return v
    }

    private static func outcome(_ judge: any Judge, _ item: JudgeItem) async -> Result<Verdict, JudgeError> {
        do throws(JudgeError) { return .success(try await judge.judge(item)) } catch { return .failure(error) }
    }
}
