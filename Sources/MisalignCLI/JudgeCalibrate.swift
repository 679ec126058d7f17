import ArgumentParser
import Foundation
import MisalignCore

extension JudgeCommand {
    /// `misalign judge calibrate`: each judge's figures on the calibration set, per trait.
    func runCalibration() throws {
        let rubricSet = try rubrics.map { (d) throws(JudgeError) -> RubricSet in try RubricSet.loading(overrides: URL(fileURLWithPath: d)) } ?? RubricSet.builtin
        let set = try calibrationSet.map { (f) throws(JudgeError) -> CalibrationSet in try CalibrationSet.load(URL(fileURLWithPath: f)) } ?? .builtin
        let names = traits.isEmpty ? set.traits.filter { rubricSet[$0] != nil } : traits
        guard !names.isEmpty else { throw CLIError("\(set.source) bands no trait with a rubric; name one with --trait (and --rubrics for your own)") }
        for t in names where set.items(for: t).isEmpty {
            throw CLIError("\(set.source) has no low or high item for \(t); give a set that bands it (--set)")
        }
        let chosen = try names.map { (t) throws(JudgeError) -> Rubric in try rubricSet.require(t) }
        let js = try settings()
        let factory = js.judgeFactory(limits: RateLimits(maxInFlight: js.maxInFlight, requestsPerMinute: rpm, tokensPerMinute: tpm),
                                      keyVariables: [.openai: openaiKeyEnv, .anthropic: anthropicKeyEnv])
        let total = chosen.reduce(0) { $0 + set.items(for: $1.name).count } * judges.count
        let bar = ProgressBar(label: "calibrated", total: total, mode: output.progressMode)
        factory.notice = { bar.note($0) }
        let built = try makeJudges(factory)
        let cacheStore: VerdictCache? = noCache ? nil : try VerdictCache(path: URL(fileURLWithPath: cache ?? "judge-cache.sqlite"))
        let calibrator = Calibrator(maxInFlight: js.maxInFlight)
        var reports: [CalibrationReport] = []
        var before = 0
        for judge in built {
            let offset = before
            let report = try runBlocking { () async throws(JudgeError) -> CalibrationReport in
                try await calibrator.calibrate(judge: judge, rubrics: chosen, set: set, cache: cacheStore) { done, _ in bar.update(offset + done, total: total) }
            }
            before += chosen.reduce(0) { $0 + set.items(for: $1.name).count }
            reports.append(report)
        }
        bar.finish()
        if output.json {
            print(JSONValue.array(reports.map { $0.json() }).serialized())
        } else {
            print(reports.map { $0.formatted() }.joined(separator: "\n\n"))
        }
        let failing = reports.flatMap { r in r.traits.filter { !$0.passed }.map { "\(r.judge) on \($0.trait)" } }
        if !failing.isEmpty {
            throw CLIError("failed calibration: \(failing.joined(separator: ", ")); its scores on these traits cannot be trusted (see the reasons above)")
        }
    }
}
