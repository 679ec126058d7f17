import Foundation

/// LoRA fine-tuning of a Qwen2 model on tokenised chat examples, as transformers' Trainer does
/// it: each optimizer step takes `gradientAccumulation` micro-batches of `batchSize` examples
/// in the epoch's shuffled order, divides the summed token losses by the step's target count,
/// clips the global gradient norm, and updates with AdamW at the scheduled learning rate.
///
/// The data position follows from the step (epoch = step / stepsPerEpoch), and each epoch's
/// order from the seed, so a run resumed from a checkpoint replays exactly the same batches.
public final class LoRATrainer: Trainer {
    public let settings: TrainingSettings
    public let examples: [TrainingExample]
    public let model: LoRATrainingModel
    public let optimizer: AdamW
    public let store: CheckpointStore?
    public let metrics: MetricsLog?
    public private(set) var step = 0
    public let totalSteps: Int
    public let stepsPerEpoch: Int
    public private(set) var lastCheckpoint: CheckpointDirectory?
    let fingerprint: String

    public var parameters: LoRAParameters { model.parameters }

    /// A trainer over `examples`. With `run`, checkpoints and `metrics.jsonl` go there, and a run
    /// directory that already has a resumable checkpoint continues from its latest one.
    /// `initAdapter` starts from an existing adapter instead of PEFT's initialisation.
    public init(weights: Qwen2Weights, examples: [TrainingExample], settings: TrainingSettings,
                run: URL? = nil, initAdapter: LoRAAdapter? = nil, baseModel: String? = nil) throws {
        try settings.validate()
        guard !examples.isEmpty else { throw TrainingError.invalidSetting(name: "data", detail: "no training examples") }
        self.settings = settings
        self.examples = examples
        let params = try LoRAParameters(config: settings.lora, model: weights.config)
        if let initAdapter { try params.load(initAdapter) } else { params.initializePEFT(seed: settings.seed) }
        let longest = examples.map(\.ids.count).max()!
        model = try LoRATrainingModel(weights: weights, parameters: params, maxRows: longest * settings.batchSize,
                                      maxSequence: longest, recompute: settings.recompute)
        optimizer = AdamW(count: params.count, weightDecay: settings.weightDecay)
        let micro = (examples.count + settings.batchSize - 1) / settings.batchSize
        stepsPerEpoch = (micro + settings.gradientAccumulation - 1) / settings.gradientAccumulation
        totalSteps = settings.maxSteps ?? stepsPerEpoch * settings.epochs
        fingerprint = settings.fingerprint(dataCount: examples.count)
        if let run {
            let store = try CheckpointStore(run: run, adapterDType: settings.adapterDType,
                                            keepAllOptimizerStates: settings.keepAllOptimizerStates, baseModel: baseModel)
            self.store = store
            if let ck = try store.latestResumable() {
                let state = try store.restore(ck, parameters: params, optimizer: optimizer)
                guard state.fingerprint == fingerprint else {
                    throw TrainingError.invalidCheckpoint(path: ck.directory.path, detail: "was written with other settings or data (\(state.fingerprint)); this run has \(fingerprint). Use another --out folder")
                }
                step = state.step
                lastCheckpoint = ck
            }
            metrics = try MetricsLog(url: run.appendingPathComponent("metrics.jsonl"), resumingAt: step)
        } else {
            store = nil; metrics = nil
        }
    }

    /// Example indices of micro-batch `index` (0-based within the step) of optimizer step `s` (0-based).
    public func microBatches(forStep s: Int) -> [[Int]] {
        let epoch = s / stepsPerEpoch, inEpoch = s % stepsPerEpoch
        let order = ChatDataset.order(count: examples.count, epoch: epoch, seed: settings.seed)
        let perStep = settings.batchSize * settings.gradientAccumulation
        let start = inEpoch * perStep, end = min(order.count, start + perStep)
        return stride(from: start, to: end, by: settings.batchSize).map { Array(order[$0..<min(end, $0 + settings.batchSize)]) }
    }

    public func train(onStep: (StepMetrics) throws -> TrainerControl = { _ in .proceed }) throws -> TrainingOutcome {
        let p = parameters
        while step < totalSteps {
            let t0 = Date()
            let batches = microBatches(forStep: step).map { idx in
                TrainingBatch(sequences: idx.map { (examples[$0].ids, examples[$0].mask) })
            }
            let items = batches.reduce(0) { $0 + $1.targetCount }
            p.grads.fill(0)
            var lossSum = 0.0
            for (i, b) in batches.enumerated() {
                var g = SplitMix64(seed: settings.seed ^ 0xD80F, stream: UInt64(step * settings.gradientAccumulation + i))
                model.dropoutSeed = g.next()
                lossSum += try model.accumulateGradients(b, normalizer: items)
            }
            let loss = lossSum / Double(max(items, 1))
            guard loss.isFinite else { throw TrainingError.nonFinite(step: step + 1, what: "loss", lastCheckpoint: lastCheckpoint?.step) }
            let norm = clipGradientNorm(p.grads.pointer, count: p.count, maxNorm: settings.maxGradNorm)
            guard norm.isFinite else { throw TrainingError.nonFinite(step: step + 1, what: "gradient norm", lastCheckpoint: lastCheckpoint?.step) }
            let lr = settings.schedule.lr(base: settings.learningRate, step: step, total: totalSteps, warmup: settings.warmupSteps)
            optimizer.update(params: p.values.pointer, grads: p.grads.pointer, count: p.count, lr: lr)
            step += 1
            var m = StepMetrics(step: step, totalSteps: totalSteps, epoch: (step - 1) / stepsPerEpoch, loss: loss, lr: lr,
                                gradNorm: norm, tokens: batches.reduce(0) { $0 + $1.rows }, targetTokens: items,
                                seconds: Date().timeIntervalSince(t0), checkpoint: nil)
            let control = try onStep(m)
            let due = (settings.saveEvery > 0 && step % settings.saveEvery == 0) || step == totalSteps || control == .stop
            if due, let ck = try saveCheckpoint() { m.checkpoint = ck.directory.lastPathComponent }
            try metrics?.append(m)
            if control == .stop { return TrainingOutcome(steps: step, stoppedEarly: true, lastCheckpoint: lastCheckpoint) }
        }
        return TrainingOutcome(steps: step, stoppedEarly: false, lastCheckpoint: lastCheckpoint)
    }

    /// Writes `checkpoint-<step>` now (no-op without a run directory).
    @discardableResult
    public func saveCheckpoint() throws -> CheckpointDirectory? {
        guard let store else { return nil }
        let state = TrainerResumeState(step: step, totalSteps: totalSteps, epoch: step / stepsPerEpoch,
                                       seed: settings.seed, fingerprint: fingerprint)
        lastCheckpoint = try store.save(parameters: parameters, optimizer: optimizer, state: state)
        return lastCheckpoint
    }
}
