import Foundation
import MisalignGeneration
import MisalignHTTP
import MisalignIO
import MisalignModel

/// What the runner reports while it works: a stage's progress, or a one-line note.
public enum PipelineEvent: Sendable {
    case stage(name: String, done: Int, total: Int)
    case note(String)
}

/// What a call to `PipelineRunner.run()` did.
public struct PipelineSummary: Sendable {
    /// Units finished by this call, per stage (train: steps; dynamics: adapter checkpoints;
    /// generate: answers; judge: verdicts; aggregate: checkpoints; detect: runs).
    public var done: [String: Int] = [:]
    /// True when the run was already complete and nothing was done.
    public var nothingToDo: Bool { done.values.allSatisfy { $0 == 0 } }
    /// Seconds per stage in this call.
    public var seconds: [String: Double] = [:]
    /// Seconds spent training (loading the model and data included), generating (loading the
    /// model included) and waiting on judge calls; the rest of the wall time is the pipeline's
    /// own overhead (config, store, prompts, cache keys, aggregation, detection, exports).
    public var workSeconds = 0.0
    public var wallSeconds = 0.0
    public var run: URL
    /// The early-warning monitor's record per run (empty without `monitor:`).
    public var earlyWarning: [EarlyWarningStatus] = []
}

/// Runs an `Experiment` to completion: train -> dynamics -> generate -> judge -> aggregate -> detect, each
/// stage skipping the units the run store already holds, so calling `run()` again after a
/// crash resumes exactly where the last call stopped and a complete run does nothing.
///
/// ```swift
/// let experiment = try Experiment.load(from: URL(fileURLWithPath: "study.yaml"))
/// let runner = PipelineRunner(experiment) { event in print(event) }
/// // or with parts of your own: PipelineRunner(experiment, components: PipelineComponents(judges: [MyJudge()]))
/// let summary = try await runner.run()
/// ```
// Unchecked Sendable: `cancelled`, `trainerCheckpoints` and `summary.workSeconds` change only
// under `cancelLock`; `components` is set before `run()`; `store`, `lock` and the rest of
// `summary` are written by `run()` and the stage it awaits, one stage at a time.
public final class PipelineRunner: @unchecked Sendable {
    public static let stages = ["train", "dynamics", "generate", "judge", "aggregate", "detect"]
    public let experiment: Experiment
    let progress: @Sendable (PipelineEvent) -> Void
    private let cancelLock = NSLock()
    private var cancelled = false
    /// The parts the pipeline runs: the experiment's by default, or an embedding program's own.
    public var components: PipelineComponents
    /// Replaces the generation backend (`components.generation`).
    public var backendOverride: (any GenerationBackend)? {
        get { components.generation }
        set { components.generation = newValue }
    }
    /// Replaces the HTTP transport judges use (`components.judgeTransport`).
    public var judgeTransport: (any HTTPTransport)? {
        get { components.judgeTransport }
        set { components.judgeTransport = newValue }
    }
    var summary: PipelineSummary
    /// The checkpoints the trainers handed over in this call, by run and step: generation
    /// loads these instead of rebuilding them from their stored paths (`checkpoint(_:step:path:)`).
    private var trainerCheckpoints: [RunID: [Int: any Checkpoint]] = [:]
    /// Whether the calibration gate's verdicts were noted in this call (following repeats the
    /// judge stage; the notes are said once).
    var calibrationNoted = false
    var store: RunStore!
    /// The run folder's writer lock, held from `prepare()` to the end of `run()`.
    var lock: RunLock?

    public init(_ experiment: Experiment, components: PipelineComponents = PipelineComponents(),
                progress: @escaping @Sendable (PipelineEvent) -> Void = { _ in }) {
        self.experiment = experiment
        self.components = components
        self.progress = progress
        summary = PipelineSummary(run: experiment.output)
    }

    /// Asks the runner to stop at the next unit boundary; `run()` then throws `.cancelled`.
    public func cancel() { cancelLock.lock(); cancelled = true; cancelLock.unlock() }

    func checkCancelled(_ stage: String) throws(PipelineError) {
        cancelLock.lock(); let c = cancelled; cancelLock.unlock()
        if c || Task.isCancelled { throw .cancelled(stage: stage) }
    }

    func note(_ s: String) { progress(.note(s)) }

    /// Runs every stage that has work left.
    @discardableResult
    public func run() async throws -> PipelineSummary {
        let start = Date()
        defer { lock?.release(); lock = nil }  // also when prepare() refuses the folder
        try prepare()
        for stage in Self.stages {
            try checkCancelled(stage)
            let t0 = Date()
            let n: Int
            do {
                switch stage {
                case "train":
                    n = try await runOffPool { try self.trainStage() }  // minutes of blocking work, off the cooperative pool
                    try await followStage()  // external_checkpoints with follow: true (FollowStage.swift)
                case "dynamics": n = try await runOffPool { try self.dynamicsStage() }  // reads every adapter: blocking work
                case "generate": n = try await generateStage()
                case "judge": n = try await judgeStage()
                case "aggregate": n = try aggregateStage()
                default: n = try detectStage()
                }
            } catch FileError.cannotWrite(let path, let reason) {
                // A full disk or a read-only folder mid-run: what was committed stays.
                throw PipelineError.unwritable(path: path, reason: reason)
            }
            summary.done[stage, default: 0] += n  // following adds its generate, judge and aggregate work first
            summary.seconds[stage, default: 0] += Date().timeIntervalSince(t0)
        }
        let exports = experiment.output.appendingPathComponent(Exports.folder)
        if !summary.nothingToDo || !FileManager.default.fileExists(atPath: exports.path) {
            try Exports.write(store: store, to: exports)
        }
        summary.earlyWarning = try EarlyWarningStatus.load(store, runs: experiment.runs, followed: experiment.followedRuns)
        summary.wallSeconds = Date().timeIntervalSince(start)
        return summary
    }

    /// Checks inputs, the settings against the model, and the output folder before anything is
    /// created; then takes the run folder's lock, opens the store, and refuses a run directory
    /// made with settings that change results.
    func prepare() throws {
        let e = experiment
        try checkInputs()
        try checkComponents()
        try validateAgainstModel()
        if e.monitor.enabled { _ = try e.monitor.earlyWarning(e) }  // bad probe settings fail before any work
        // Content fingerprints are computed before anything is written: an unreadable dataset
        // fails here.
        let fields = try e.fingerprintFields()
        var legacy = try e.legacyFingerprints()
        var analysis = legacy.removeLast()
        // Plug-in rules and judges change onsets (and `mean`): a change recomputes them.
        if !components.onsetRules.isEmpty { analysis.1 += " plugin-rules " + components.onsetRules.map(\.name).joined(separator: ",") }
        if !components.judges.isEmpty || !components.configuredJudges { analysis.1 += " judges " + judgeNames.joined(separator: ",") }
        try createOutputFolder()
        lock = try RunLock(run: e.output)
        store = try RunStore(run: e.output)
        for n in try store.checkFingerprints(fields, legacy: legacy, run: e.output) { note(n) }
        // Aggregation and detection settings may change: their results are recomputed.
        for n in try reconcileJudges() { note(n) }
        if let old = try store.meta("fingerprint.analysis"), old != analysis.1 {
            note("\(Self.analysisChange(from: old, to: analysis.1)): recomputing aggregates and onsets")
            try store.transaction { try store.resetAnalysis() }
        }
        try store.setMeta("fingerprint.analysis", analysis.1)
        if e.externalCheckpoints.contains(where: { $0.follow != nil }) { _ = try followDetectorSettings() }
        if e.monitor.enabled, !e.externalCheckpoints.isEmpty, !e.externalCheckpoints.contains(where: { $0.follow != nil }) {
            note("monitor: nothing is trained here (external_checkpoints), so the early-warning monitor does not run")
        }
        try store.setMeta("config_path", e.source)
        if let text = try? String(contentsOfFile: e.source, encoding: .utf8) { try store.setMeta("config_text", text) }
    }

    /// Keeps a checkpoint a trainer handed over, for generation.
    func keepTrainerCheckpoint(_ r: RunID, _ checkpoint: any Checkpoint) {
        cancelLock.withLock { trainerCheckpoints[r, default: [:]][checkpoint.step] = checkpoint }
    }

    /// The checkpoint run `r`'s trainer handed over for `step` in this call, if any.
    func trainerCheckpoint(_ r: RunID, step: Int) -> (any Checkpoint)? {
        cancelLock.withLock { trainerCheckpoints[r]?[step] }
    }

    /// Adds seconds spent in model or HTTP work (for the overhead figure).
    func addWork(_ s: Double) { cancelLock.lock(); summary.workSeconds += s; cancelLock.unlock() }
}

extension PipelineRunner {
    /// `run()` on the calling thread (for synchronous callers such as the CLI).
    public func runSync() throws -> PipelineSummary {
        try runBlocking { try await self.run() }
    }
}
