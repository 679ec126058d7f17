import Foundation

/// Agreement between every pair of judges, per trait, over the answers both scored.
public struct AgreementRow: Sendable {
    public var trait: String
    public var judgeA: String
    public var judgeB: String
    public var stats: AgreementStats

    public init(trait: String, judgeA: String, judgeB: String, stats: AgreementStats) {
        self.trait = trait
        self.judgeA = judgeA
        self.judgeB = judgeB
        self.stats = stats
    }
}

public enum JudgeReport {
    /// Pairwise agreement from output rows (non-ok verdicts count as missing).
    public static func agreement(rows: [JudgeRow], traits: [String], judges: [String]) -> [AgreementRow] {
        var byKey: [String: Double] = [:]
        var answers: [String] = []
        var seen = Set<String>()
        for r in rows {
            if seen.insert(r.answerID).inserted { answers.append(r.answerID) }
            if r.verdict.status == .ok, let s = r.verdict.score { byKey["\(r.trait)\u{0}\(r.judge)\u{0}\(r.answerID)"] = s }
        }
        var out: [AgreementRow] = []
        for t in traits {
            for i in judges.indices {
                for j in judges.indices where j > i {
                    let a = answers.map { byKey["\(t)\u{0}\(judges[i])\u{0}\($0)"] }
                    let b = answers.map { byKey["\(t)\u{0}\(judges[j])\u{0}\($0)"] }
                    out.append(AgreementRow(trait: t, judgeA: judges[i], judgeB: judges[j], stats: Agreement.compare(a, b)))
                }
            }
        }
        return out
    }

    /// A plain-text table of agreement rows.
    public static func formatAgreement(_ rows: [AgreementRow]) -> String {
        func f(_ v: Double?, _ d: Int = 3) -> String { v.map { String(format: "%.\(d)f", $0) } ?? "-" }
        var lines = [["trait", "judge A", "judge B", "n", "pearson", "spearman", "mean |d|", ">=20", "alpha", "kappa@50"]]
        for r in rows {
            let s = r.stats
            lines.append([r.trait, r.judgeA, r.judgeB, "\(s.n)", f(s.pearson), f(s.spearman), f(s.meanAbsoluteDifference, 1),
                          f(s.shareDifferingBy20, 2), f(s.krippendorffAlpha), f(s.cohenKappa)])
        }
        return table(lines)
    }

    /// A plain-text table of per-judge usage.
    public static func formatUsage(_ usage: [JudgeUsage]) -> String {
        var lines = [["judge", "fresh", "cached", "resumed", "errors", "attempts", "input tok", "output tok", "cost"]]
        for u in usage {
            lines.append([u.judge, "\(u.fresh)", "\(u.cached)", "\(u.resumed)", "\(u.errors)", "\(u.attempts)", "\(u.inputTokens)",
                          "\(u.outputTokens)", u.cost.map { String(format: "%.4f", $0) } ?? "-"])
        }
        return table(lines)
    }

    static func table(_ lines: [[String]]) -> String {
        let widths = lines[0].indices.map { c in lines.map { $0[c].count }.max()! }
        return lines.map { l in l.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
            .joined(separator: "\n")
    }
}

extension JudgeReport {
    /// `rows` with an ensemble row after each (answer, trait) group, aggregating that group's
    /// judges' verdicts with no further calls. A group with a failed member gets an `error`
    /// ensemble row (rerun to complete it).
    public static func addingEnsembleRows(_ rows: [JudgeRow], aggregation: EnsembleJudge.Aggregation,
                                          name: String = "ensemble") throws(JudgeError) -> [JudgeRow] {
        var out: [JudgeRow] = []
        var i = 0
        while i < rows.count {
            var j = i
            while j < rows.count && rows[j].answerID == rows[i].answerID && rows[j].trait == rows[i].trait { j += 1 }
            let group = Array(rows[i..<j])
            out += group
            let first = group[0]
            let v: Verdict
            if let failed = group.first(where: { $0.verdict.status == .error }) {
                v = Verdict(judge: name, trait: first.trait, score: nil, status: .error, detail: "member \(failed.judge) failed",
                            rubricHash: first.verdict.rubricHash, attempts: 0, members: group.map(\.verdict))
            } else {
                v = try EnsembleJudge.combine(group.map(\.verdict), aggregation: aggregation, name: name, trait: first.trait,
                                              rubricHash: first.verdict.rubricHash)
            }
            out.append(JudgeRow(answerID: first.answerID, questionID: first.questionID, trait: first.trait, judge: name,
                                verdict: v, cached: group.allSatisfy(\.cached)))
            i = j
        }
        return out
    }
}
