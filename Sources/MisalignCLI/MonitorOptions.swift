import ArgumentParser
import Foundation
import MisalignCore

/// `misalign train`'s early-warning flags.
struct MonitorOptions: ParsableArguments {
    @Option(help: "Judge for the early-warning probe (openai:MODEL[@URL], anthropic:MODEL[@URL], local:DIR); turns the monitor on.")
    var monitorJudge: String?
    @Option(parsing: .unconditional, help: "Probe every K optimizer steps.")
    var monitorEvery: Int = 2
    @Option(parsing: .unconditional, help: "Probe questions (alternating hallucination, general and evil sets).")
    var monitorQuestions: Int = 8
    @Option(parsing: .unconditional, help: "Samples per probe question.")
    var monitorSamples: Int = 4
    @Option(parsing: .unconditional, help: "Most new tokens per probe answer.")
    var monitorMaxNewTokens: Int = 128
    @Option(parsing: .unconditional, help: "Probes forming the detectors' baseline.")
    var monitorBaseline: Int = 5
    @Option(parsing: .unconditional, help: "Floor of the baseline sd, in score points.")
    var monitorMinSd: Double = 1
    @Option(help: "Comma-separated signals whose alarm stops training with --stop-on-alarm.")
    var monitorStopSignals: String = "evil"
    @Flag(help: "Stop training at the first alarm on a stop signal, keeping that step's checkpoint.")
    var stopOnAlarm = false
    @Option(help: "Environment variable with the judge's API key (openai: / anthropic: judges).")
    var monitorKeyEnv: String?

    var settings: EarlyWarningSettings {
        var s = EarlyWarningSettings()
        s.every = monitorEvery; s.questions = EarlyWarningSettings.probeQuestions(monitorQuestions)
        s.samples = monitorSamples; s.maxNewTokens = monitorMaxNewTokens; s.baseline = monitorBaseline; s.minSD = monitorMinSd
        s.stopSignals = monitorStopSignals.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        s.stopOnAlarm = stopOnAlarm
        return s
    }

    /// The monitor for `trainer`, or nil without --monitor-judge.
    func monitor(trainer: LoRATrainer, job: TrainingJob) throws -> EarlyWarningMonitor? {
        guard let monitorJudge else {
            if stopOnAlarm { throw ValidationError("--stop-on-alarm needs --monitor-judge") }
            return nil
        }
        var keys = [JudgeSpec.Kind.openai: "OPENAI_API_KEY", .anthropic: "ANTHROPIC_API_KEY"]
        if let monitorKeyEnv { keys[.openai] = monitorKeyEnv; keys[.anthropic] = monitorKeyEnv }
        let judge = try JudgeFactory(keyVariables: keys).make(try JudgeSpec(parsing: monitorJudge))
        let tok = try BPETokenizer(directory: job.tokenizer ?? job.model)
        return try EarlyWarningMonitor(run: job.out, settings: settings, judge: judge, tokenizer: tok, resumingAt: trainer.step,
                                       source: EarlyWarningMonitor.localProbe(trainer: trainer, tokenizer: tok),
                                       onMessage: { FileHandle.standardError.write(Data("\($0)\n".utf8)) })
    }
}
