import Foundation
import MisalignHTTP
import MisalignIO
import MisalignChangePoint
import MisalignGeneration
import MisalignJudge
import MisalignModel
import MisalignTokenizer

/// The generator for the model as it is right after optimizer step `step`.
public typealias ProbeGeneratorSource = @Sendable (_ step: Int) async throws -> any Generator

/// Watches a training run for the onset of misalignment while it trains. At every
/// `settings.every`-th step it samples answers to a small probe set, has them judged for each
/// signal (hallucination, evil), feeds each signal's mean to an online CUSUM and BOCPD
/// (`ChangePoint/`), and records each detector's first alarm. With `stopOnAlarm`, an alarm on
/// a stop signal makes `onStep` answer `.stop`, so the trainer saves that step's checkpoint
/// and returns.
///
/// Resuming: probe records are kept in the run directory. A monitor created for a trainer that
/// resumed at step R replays the records up to R through fresh detectors, which gives exactly
/// the state (and alarms) of a run that never stopped; records after R (made before the
/// crash, by the same bit-exact weights) are reused when training reaches their step again,
/// so no probe is generated or judged twice.
// Unchecked Sendable: `probes`, `alarms`, `stopStep`, `pending`, the detectors and `onMessage`
// change unguarded. They change only in init and in `observe` (through `onStep`), which the
// trainer calls from its one thread, one step at a time, waiting for each; the results are
// read on that thread or after training returns.
public final class EarlyWarningMonitor: @unchecked Sendable {
    public let settings: EarlyWarningSettings
    public let log: EarlyWarningLog
    public let judge: any Judge
    public let fingerprint: String
    /// Probes processed so far (replayed or new), by step.
    public private(set) var probes: [ProbeRecord] = []
    /// First alarms so far, in the order raised.
    public private(set) var alarms: [AlarmRecord] = []
    /// The step at which a stop-signal alarm stopped (or will stop) training, with `stopOnAlarm`.
    public private(set) var stopStep: Int?
    /// One line per probe and alarm, for the command's output.
    public var onMessage: (@Sendable (String) -> Void)?
    let source: ProbeGeneratorSource
    let prompts: [[Int32]]
    /// The judged signals' rubrics.
    let rubrics: [Rubric]
    /// The projection signals' vectors by signal, and every layer they read.
    let projections: [(signal: String, vector: TraitVector)]
    /// Each projection signal's direction at its vector's layer.
    let directions: [TraitDirection]
    let projectionLayers: [Int]
    private var pending: [Int: ProbeRecord] = [:]
    private var detectors: [String: SignalDetectors]

    /// `resumingAt`: the step the trainer starts from (`trainer.step`; 0 for a fresh run).
    /// `vectors`: the trait vectors of the projection signals (`evil@proj` needs `evil`), each
    /// with its layer; the probe's generator must then record hidden states (the in-process one).
    public init(run: URL, settings: EarlyWarningSettings, judge: any Judge, tokenizer: BPETokenizer, resumingAt step: Int,
                vectors: [String: TraitVector] = [:], source: @escaping ProbeGeneratorSource,
                onMessage: (@Sendable (String) -> Void)? = nil) throws {
        try settings.validate()
        self.settings = settings
        self.judge = judge
        self.source = source
        self.onMessage = onMessage
        log = try EarlyWarningLog(run: run)
        var projections: [(String, TraitVector)] = []
        for signal in settings.projectionSignals {
            let trait = ActivationSettings.trait(ofSignal: signal)!
            guard let v = vectors[trait] else {
                throw EarlyWarningError.invalidSetting(name: "monitor.signals", detail: "`\(signal)` needs a vector for \(trait) (activations.vectors.\(trait))")
            }
            guard v.layer != nil else {
                throw EarlyWarningError.invalidSetting(name: "monitor.signals", detail: "the vector for \(trait) (\(v.source)) names no layer to project at")
            }
            projections.append((signal, v))
        }
        self.projections = projections
        directions = try projections.map { try $0.1.direction() }
        projectionLayers = Array(Set(projections.map { $0.1.layer! })).sorted()
        // The vectors' contents are part of what a recorded probe means (only when projected, so
        // judged-only records keep their fingerprint).
        let vectorText = projections.map { "\($0.0)=\($0.1.layer!):\(Self.digest($0.1))" }.joined(separator: ",")
        fingerprint = projections.isEmpty ? settings.fingerprint(judge: judge.cacheIdentity)
            : String(SHA256.hex(settings.fingerprint(judge: judge.cacheIdentity) + "|" + vectorText).prefix(16))
        prompts = try settings.questions.map { q in
            try tokenizer.applyChatTemplate([ChatMessage(role: "user", content: q.text)], addGenerationPrompt: true).ids.map { Int32($0) }
        }
        rubrics = settings.judgedSignals.map { RubricSet.builtin[$0]! }
        detectors = Dictionary(uniqueKeysWithValues: settings.signals.map { ($0, SignalDetectors(settings: settings, signal: $0)) })
        let recorded = try log.readProbes()
        for r in recorded where r.fingerprint != fingerprint {
            throw EarlyWarningError.settingsChanged(path: log.probesURL.path, recorded: r.fingerprint, now: fingerprint)
        }
        for r in recorded.sorted(by: { $0.step < $1.step }) {
            if r.step <= step { process(r, announce: false) } else { pending[r.step] = r }
        }
        try save()
        if !probes.isEmpty {
            say("early warning: replayed \(probes.count) probes up to step \(step) (\(alarms.count) alarms), \(pending.count) later probes kept for reuse")
        }
    }

    /// Whether training should not (re)start: a stop-signal alarm already stopped this run.
    public var alreadyStopped: Bool { settings.stopOnAlarm && stopStep != nil }

    /// The trainer's step callback: probes when the step is due; `.stop` at a stop alarm.
    public func onStep(_ m: StepMetrics) throws -> TrainerControl {
        guard m.step % settings.every == 0 else { return .proceed }
        _ = try runBlocking { try await self.observe(step: m.step) }
        return settings.stopOnAlarm && stopStep == m.step ? .stop : .proceed
    }

    /// Probes step `step` (or reuses its record), updates the detectors and the files; returns
    /// the alarms it raised.
    @discardableResult
    public func observe(step: Int) async throws -> [AlarmRecord] {
        if let last = probes.last, step <= last.step { return [] }
        let record: ProbeRecord
        if let r = pending.removeValue(forKey: step) { record = r } else { record = try await probe(step: step) }
        let before = alarms.count
        process(record, announce: true)
        try save()
        return Array(alarms[before...])
    }

    /// Each signal's first alarm step (the earliest over its detectors).
    public var firstAlarm: [String: Int] { alarms.firstAlarm }

    /// Steps from hallucination's first alarm to evil's (positive: hallucination warned first).
    public var warningSteps: Int? { alarms.warningSteps }

    /// A closing line: the alarms and the warning hallucination gave.
    public func summary() -> String {
        var lines = ["early warning: \(probes.count) probes, \(alarms.count) alarms (\(log.alarmsURL.path))"]
        for s in settings.signals {
            lines.append("  \(s): " + (firstAlarm[s].map { "first alarm at step \($0)" } ?? "no alarm"))
        }
        if let w = warningSteps {
            lines.append(w >= 0 ? "hallucination gave \(w) steps of warning before evil's alarm"
                                : "evil's alarm came \(-w) steps before hallucination's: no warning")
        } else if firstAlarm["evil"] != nil || firstAlarm[ActivationSettings.signal("evil")] != nil {
            lines.append("evil alarmed with no hallucination alarm before it: no warning")
        }
        if let s = stopStep, settings.stopOnAlarm { lines.append("training stopped at the alarm at step \(s) (checkpoint-\(s) kept)") }
        return lines.joined(separator: "\n")
    }

    private func say(_ text: String) { onMessage?(text) }

    private func save() throws {
        let all = (probes + pending.values).sorted { $0.step < $1.step }
        try log.write(probes: all, alarms: alarms)
    }

    /// Feeds one probe to every signal's detectors.
    private func process(_ r: ProbeRecord, announce: Bool) {
        probes.append(r)
        var parts: [String] = []
        for s in settings.signals {
            let mean = r.mean(s)
            parts.append("\(s) " + (mean.map { String(format: "%.1f", $0) } ?? "-"))
            guard let mean else { continue }
            for (detector, alarm) in detectors[s]!.feed(mean, step: r.step) {
                let a = AlarmRecord(step: r.step, signal: s, detector: detector, statistic: alarm.statistic, changeStep: alarm.changeStep)
                alarms.append(a)
                if settings.stopOnAlarm && settings.stopSignals.contains(s) && stopStep == nil { stopStep = r.step }
                if announce { say(String(format: "ALARM step %d: %@ (%@, statistic %.3g, change from step %d)", r.step, s, detector, a.statistic, a.changeStep)) }
            }
        }
        if announce { say(String(format: "probe step %d: %@ (%.1f s)", r.step, parts.joined(separator: ", "), r.seconds)) }
    }

    private static func verdict(_ judge: any Judge, _ item: JudgeItem, _ k: Int) async -> (Int, Result<Verdict, JudgeError>) {
        do { return (k, .success(try await judge.judge(item))) } catch { return (k, .failure(error)) }
    }

    /// SHA-256 of a vector's values (f32 bytes), its first 16 hex digits.
    static func digest(_ v: TraitVector) -> String {
        let bytes = UnsafeRawBufferPointer(start: v.values.pointer, count: v.values.count * MemoryLayout<Float>.size)
        return String(SHA256.hex(bytes: Array(bytes)).prefix(16))
    }

    /// Each projection signal's mean over the probe's answers: the response-mean projection at
    /// its vector's layer (answers whose first token ended them have none).
    private func projectionSignals(_ completions: [Completion], step: Int) throws -> [ProbeRecord.Signal] {
        try zip(projections, directions).map { p, direction in
            let signal = p.signal
            var values: [Double] = []
            for c in completions {
                guard let a = c.activations else {
                    throw EarlyWarningError.probeFailed(step: step, reason: "\(signal) needs hidden states, and the probe's generator recorded none "
                                                       + "(only the in-process model records them)")
                }
                if let x = direction.project(mean: a.responseMean) { values.append(x) }
            }
            var sum = 0.0
            for v in values { sum += v }
            return ProbeRecord.Signal(name: signal, mean: values.isEmpty ? nil : sum / Double(values.count), scored: values.count, answers: completions.count)
        }
    }

    /// Generates the probe at `step`, judges the judged signals and projects the others.
    private func probe(step: Int) async throws -> ProbeRecord {
        let t0 = Date()
        let s = settings
        let layers = projectionLayers
        let requests = prompts.map {
            GenerationRequest(prompt: $0, samples: s.samples, maxNewTokens: s.maxNewTokens, sampling: s.sampling, seed: s.seed, hiddenStateLayers: layers)
        }
        let completions: [Completion]
        do { completions = try await source(step).generate(requests, onToken: nil) } catch {
            throw EarlyWarningError.probeFailed(step: step, reason: "generation: \(error)")
        }
        let projected = try projectionSignals(completions, step: step)
        // Answer a, trait t is item a * traits + t.
        let traits = rubrics.count, rubrics = self.rubrics
        let items = completions.flatMap { c in
            rubrics.map { JudgeItem(rubric: $0, question: s.questions[c.request].text, answer: c.text) }
        }
        let judge = self.judge
        let results = await withTaskGroup(of: (Int, Result<Verdict, JudgeError>).self) { group in
            var next = 0, stop = false
            var out: [(Int, Result<Verdict, JudgeError>)] = []
            for _ in 0..<min(s.maxInFlight, items.count) {
                let k = next, item = items[k]; next += 1
                group.addTask { await Self.verdict(judge, item, k) }
            }
            for await r in group {
                out.append(r)
                if case .failure = r.1 { stop = true }
                if next < items.count && !stop {
                    let k = next, item = items[k]; next += 1
                    group.addTask { await Self.verdict(judge, item, k) }
                }
            }
            return out
        }
        var scores = [[Double]](repeating: [], count: traits)
        var failure: JudgeError?
        for (k, result) in results.sorted(by: { $0.0 < $1.0 }) {
            switch result {
            case .success(let v): if v.status == VerdictStatus.ok, let score = v.score { scores[k % traits].append(score) }
            case .failure(let e): if failure == nil { failure = e }
            }
        }
        if let failure { throw EarlyWarningError.probeFailed(step: step, reason: "judge \(judge.id): \(failure)") }
        let judged = rubrics.indices.map { t in
            ProbeRecord.Signal(name: rubrics[t].name, mean: scores[t].isEmpty ? nil : scores[t].reduce(0, +) / Double(scores[t].count),
                               scored: scores[t].count, answers: completions.count)
        }
        // In the settings' order.
        let signals = s.signals.compactMap { name in (judged + projected).first { $0.name == name } }
        return ProbeRecord(step: step, fingerprint: fingerprint, signals: signals, seconds: Date().timeIntervalSince(t0))
    }
}

/// One signal's online detectors. BOCPD starts once `baseline` means are in (its prior is
/// built from them), and is then fed those means too, as `BocpdRule` does offline.
struct SignalDetectors {
    let settings: EarlyWarningSettings
    let signal: String
    var cusum: Cusum
    var bocpd: Bocpd?
    var warm: [(value: Double, step: Int)] = []
    var fired: Set<String> = []

    init(settings: EarlyWarningSettings, signal: String) { self.settings = settings; self.signal = signal; cusum = settings.cusum(signal) }

    /// The first alarms this value raises (each detector alarms once).
    mutating func feed(_ value: Double, step: Int) -> [(String, Alarm)] {
        var out: [(String, Alarm)] = []
        if settings.detectors.contains("cusum"), let a = cusum.update(value, step: step), fired.insert("cusum").inserted {
            out.append(("cusum", a))
        }
        guard settings.detectors.contains("bocpd") else { return out }
        var batch: [(value: Double, step: Int)] = [(value, step)]
        if bocpd == nil {
            warm.append((value, step))
            guard warm.count == settings.baseline else { return out }
            bocpd = settings.bocpd(signal, baseline: warm.map(\.value))
            batch = warm
        }
        for (v, s) in batch {
            if let a = bocpd!.update(v, step: s), fired.insert("bocpd").inserted { out.append(("bocpd", a)) }
        }
        return out
    }
}
