import Foundation
import MisalignIO

extension JudgeReport {
    /// The summary `misalign judge --json` prints: where the verdicts are, how many rows of
    /// each status, per-judge usage and cost, and pairwise agreement. Undefined statistics are
    /// `null`.
    public static func summaryJSON(output: String, rows: [JudgeRow], usage: [JudgeUsage], agreement: [AgreementRow]) -> JSONValue {
        func num(_ v: Double?) -> JSONValue { v.map { .double($0) } ?? .null }
        var statuses = JSONObject()
        for s in VerdictStatus.allCases { statuses[s.rawValue] = .int(Int64(rows.filter { $0.verdict.status == s }.count)) }
        let usageJSON: [JSONValue] = usage.map { u in
            .object(JSONObject([
                ("judge", .string(u.judge)), ("fresh", .int(Int64(u.fresh))), ("cached", .int(Int64(u.cached))),
                ("resumed", .int(Int64(u.resumed))), ("errors", .int(Int64(u.errors))), ("attempts", .int(Int64(u.attempts))),
                ("input_tokens", .int(Int64(u.inputTokens))), ("output_tokens", .int(Int64(u.outputTokens))), ("cost_usd", num(u.cost)),
            ]))
        }
        let agreementJSON: [JSONValue] = agreement.map { a in
            .object(JSONObject([
                ("trait", .string(a.trait)), ("judge_a", .string(a.judgeA)), ("judge_b", .string(a.judgeB)),
                ("n", .int(Int64(a.stats.n))), ("pearson", num(a.stats.pearson)), ("spearman", num(a.stats.spearman)),
                ("mean_abs_diff", num(a.stats.meanAbsoluteDifference)), ("share_diff_ge_20", num(a.stats.shareDifferingBy20)),
                ("krippendorff_alpha", num(a.stats.krippendorffAlpha)), ("cohen_kappa_50", num(a.stats.cohenKappa)),
            ]))
        }
        return .object(JSONObject([
            ("output", .string(output)), ("rows", .int(Int64(rows.count))), ("status", .object(statuses)),
            ("usage", .array(usageJSON)), ("agreement", .array(agreementJSON)),
        ]))
    }
}
