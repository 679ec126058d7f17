import Foundation
import MisalignChangePoint
import MisalignGeneration
import MisalignHTTP
import MisalignJudge
import MisalignModel

/// Makes the trainer of one run (one dataset and seed). The pipeline calls it for each run
/// whose training is not finished, trains it step by step (committing each step and each new
/// checkpoint to the run store), and on a later call asks again for the runs still unfinished:
/// a trainer that resumes from its own checkpoints resumes the pipeline too.
public protocol TrainerFactory: Sendable {
    /// The trainer for `run`. `job` holds what the experiment says about it: the base model,
    /// the run's dataset, the folder its checkpoints belong in, and the training settings with
    /// the run's seed. `note` takes one-line log notes.
    func makeTrainer(for run: RunID, job: TrainingJob, note: @escaping @Sendable (String) -> Void) throws -> any Trainer
}

/// The default: Misalign's own `LoRATrainer` on the CPU, resuming from the run's latest
/// checkpoint.
public struct LoRATrainerFactory: TrainerFactory {
    public init() {}
    public func makeTrainer(for run: RunID, job: TrainingJob, note: @escaping @Sendable (String) -> Void) throws -> any Trainer {
        try job.makeTrainer(log: note)
    }
}

/// What a `PipelineRunner` is built from. Every part defaults to what the experiment
/// configures; set a part to plug in your own beside (judges, onset rules) or instead of
/// (trainers, generation, checkpoints) the built-in ones. Docs/Embedding.md walks through one.
public struct PipelineComponents: Sendable {
    /// Makes each run's trainer; nil: `LoRATrainerFactory`.
    public var trainers: (any TrainerFactory)?
    /// Judges asked beside the experiment's `judges.models` (or instead, with
    /// `configuredJudges = false`). Each is stored, cached, resumed, aggregated, averaged into
    /// `mean` and detected on exactly like a built-in judge, under its `id`, which must differ
    /// from every other judge's name; its `cacheIdentity` keys the verdict cache.
    public var judges: [any Judge]
    /// Whether the experiment's own judges are asked too.
    public var configuredJudges: Bool
    /// Factories of configured judges under schemes of your own, by scheme: with
    /// `judgeFactories["mine"]` set, `judges.models` may list `mine:xyz`, which the pipeline
    /// builds by calling the factory with that spec (its `model` is `xyz`) and then stores,
    /// caches, resumes and reports like any configured judge, under the name `mine:xyz`. A
    /// custom scheme with no factory is refused before any work.
    public var judgeFactories: [String: CustomJudgeFactory]
    /// Onset rules run beside the experiment's `detection.methods`, in the consensus and the
    /// bootstrap; `ChangePointOnsetRule` makes one of any `ChangePointDetector`. Their names
    /// must differ from the built-in rules' and from each other.
    public var onsetRules: [any OnsetRule]
    /// Where answers come from; nil: the experiment's `generation.backend`.
    public var generation: (any GenerationBackend)?
    /// The HTTP transport of the experiment's API judges; nil: libcurl.
    public var judgeTransport: (any HTTPTransport)?
    /// Turns a stored checkpoint (run, step, folder) back into the `Checkpoint` generation
    /// loads. Set, it makes every checkpoint generation loads; nil: the `Checkpoint` the trainer
    /// handed over when it was trained in the same call, else (after a restart, or for
    /// `external_checkpoints`) a `CheckpointDirectory` of the stored folder, which holds a PEFT
    /// adapter or a whole model.
    public var checkpoints: (@Sendable (RunID, Int, URL) throws -> any Checkpoint)?

    public init(trainers: (any TrainerFactory)? = nil, judges: [any Judge] = [], configuredJudges: Bool = true,
                judgeFactories: [String: CustomJudgeFactory] = [:],
                onsetRules: [any OnsetRule] = [], generation: (any GenerationBackend)? = nil,
                judgeTransport: (any HTTPTransport)? = nil,
                checkpoints: (@Sendable (RunID, Int, URL) throws -> any Checkpoint)? = nil) {
        self.trainers = trainers; self.judges = judges; self.configuredJudges = configuredJudges
        self.judgeFactories = judgeFactories
        self.onsetRules = onsetRules; self.generation = generation; self.judgeTransport = judgeTransport
        self.checkpoints = checkpoints
    }
}

extension PipelineRunner {
    /// The names verdicts are stored under, in order: the experiment's judges (unless
    /// `configuredJudges` is off), then the components' own judges by `id`.
    public var judgeNames: [String] {
        (components.configuredJudges ? experiment.judges.names : []) + components.judges.map(\.id)
    }

    /// The components' own judges and rules must have names of their own, and some judge must
    /// be left; detection's judge must be one of them (or `mean`).
    func checkComponents() throws(PipelineError) {
        let e = experiment
        let names = judgeNames
        guard !names.isEmpty else {
            throw .config(file: e.source, key: "judges.models", line: nil,
                          reason: "no judge left: the pipeline's components turn the configured judges off and add none")
        }
        if let dup = Dictionary(grouping: names, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw .config(file: e.source, key: "judges.models", line: nil,
                          reason: "two judges are named `\(dup)`; a plug-in judge's id must differ from every other judge's name")
        }
        for name in e.judges.calibrationExempt.keys.sorted() where !names.contains(name) {
            throw .config(file: e.source, key: "judges.calibration_exempt", line: e.lines["judges.calibration_exempt"],
                          reason: "`\(name)` is none of the pipeline's judges (\(names.joined(separator: ", ")))")
        }
        if let judge = e.detection.judge, judge != DetectionSettings.meanJudge, !names.contains(judge) {
            throw .config(file: e.source, key: "detection.judge", line: e.lines["detection.judge"],
                          reason: "`\(judge)` is none of the pipeline's judges (\(names.joined(separator: ", ")))")
        }
        for scheme in components.judgeFactories.keys.sorted() where JudgeSpec.Kind(rawValue: scheme) != nil || !JudgeSpec.Kind.isScheme(scheme) {
            throw .config(file: e.source, key: "judges.models", line: nil,
                          reason: "the components register a judge factory for `\(scheme)`, which "
                            + (JudgeSpec.Kind(rawValue: scheme) != nil ? "is a built-in judge API; choose a scheme of your own"
                                                                        : "is not a scheme (a letter, then letters, digits, +, -, . or _)"))
        }
        // A configured judge of a custom scheme needs the components' factory for it.
        for spec in components.configuredJudges ? e.judges.judges : [] {
            if case .custom(let scheme) = spec.kind, components.judgeFactories[scheme] == nil {
                throw .config(file: e.source, key: "judges.models", line: e.lines["judges.models"], reason: spec.unregisteredMessage)
            }
        }
        if e.monitor.enabled, let name = e.monitor.judge, !components.judges.contains(where: { $0.id == name }),
           let spec = try? JudgeSpec(parsing: name), case .custom(let scheme) = spec.kind, components.judgeFactories[scheme] == nil {
            throw .config(file: e.source, key: "monitor.judge", line: e.lines["monitor.judge"], reason: spec.unregisteredMessage)
        }
        let builtIn = (try? e.detection.rules().map(\.name)) ?? []
        var seen = Set(builtIn)
        for rule in components.onsetRules where !seen.insert(rule.name).inserted {
            throw .config(file: e.source, key: "detection.methods", line: nil,
                          reason: "two onset rules are named `\(rule.name)`; a plug-in rule's name must differ from the others'")
        }
    }

    /// The factory of the experiment's judges: the `judges:` settings, this runner's transport,
    /// and the components' factories of custom schemes.
    func judgeFactory() -> JudgeFactory {
        let factory = experiment.judges.judgeFactory(transport: judgeTransport ?? CurlTransport())
        factory.custom = components.judgeFactories
        return factory
    }

    /// The checkpoint stored at `path` for run `r`'s step `step`: the components' resolver's
    /// when there is one, else the one the trainer handed over in this call, else (a resumed
    /// call, external checkpoints) the stored folder as a `CheckpointDirectory`.
    func checkpoint(_ r: RunID, step: Int, path: String) throws -> any Checkpoint {
        let url = URL(fileURLWithPath: path)
        if let make = components.checkpoints { return try make(r, step, url) }
        if let own = trainerCheckpoint(r, step: step) { return own }
        return try CheckpointDirectory(directory: url)
    }
}
