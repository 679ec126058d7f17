import Foundation
import MisalignKernels

/// LoRA fine-tuning of a Qwen2 model on tokenised chat examples, as transformers' Trainer does
/// it: each optimizer step takes `gradientAccumulation` micro-batches of `batchSize` examples
/// in the epoch's shuffled order, divides the summed token losses by the step's target count,
/// clips the global gradient norm, and updates with AdamW at the scheduled learning rate.
///
/// The data position follows from the step (epoch = step / stepsPerEpoch), and each epoch's
/// order from the seed, so a run resumed from a checkpoint replays exactly the same batches.
public final class LoRATrainer: Trainer {
    public let settings: TrainingSettings
    /// Watches for a run that blew up (`TrainingError.diverged`).
    public private(set) var divergence: DivergenceWatch
    /// A note on the resume, for the log: settings the checkpoint did not record (written
    /// by an earlier misalign), which could not be checked.
    public private(set) var resumeNote: String?
    /// The examples trained on and those held out (`settings.holdout`, split by `HoldoutSplit`).
    public let examples: [TrainingExample]
    public let heldOut: [TrainingExample]
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
    public var latestCheckpoint: (any Checkpoint)? { lastCheckpoint }
    public func checkpointNow() throws -> (any Checkpoint)? { try saveCheckpoint() }

    /// A trainer over `examples` (all of them; with `settings.holdout` a seeded share is held
    /// out, see `HoldoutSplit`, and its loss evaluated at every checkpoint). With `run`, checkpoints and `metrics.jsonl` go there, and a run
    /// directory that already has a resumable checkpoint continues from its latest one.
    /// `initAdapter` starts from an existing adapter instead of PEFT's initialisation; its
    /// configuration rules the LoRA settings (`TrainingSettings.adopt`).
    public init(weights: Qwen2Weights, examples: [TrainingExample], settings: TrainingSettings,
                run: URL? = nil, initAdapter: LoRAAdapter? = nil, baseModel: String? = nil) throws {
        var settings = settings
        if let initAdapter { try settings.adopt(initAdapter, layerCount: weights.config.numHiddenLayers) }
        try settings.validate(model: weights.config)
        guard !examples.isEmpty else { throw TrainingError.invalidSetting(name: "data", detail: "no training examples") }
        self.settings = settings
        let split = try HoldoutSplit(count: examples.count, fraction: settings.holdout, seed: settings.seed)
        let held = split.heldOut.map { examples[$0] }
        let examples = split.train.map { examples[$0] }
        self.examples = examples
        heldOut = held
        let params = try LoRAParameters(config: settings.lora, model: weights.config)
        if let initAdapter { try params.load(initAdapter) } else { params.initializePEFT(seed: settings.seed) }
        let longest = (examples + held).map(\.ids.count).max()!
        model = try LoRATrainingModel(weights: weights, parameters: params, maxRows: longest * settings.batchSize,
                                      maxSequence: longest, recompute: settings.recompute, precision: settings.precision)
        optimizer = AdamW(count: params.count, weightDecay: settings.weightDecay)
        let micro = (examples.count + settings.batchSize - 1) / settings.batchSize
        stepsPerEpoch = (micro + settings.gradientAccumulation - 1) / settings.gradientAccumulation
        totalSteps = settings.maxSteps ?? stepsPerEpoch * settings.epochs
        let digest = TrainingSettings.dataDigest(examples)
        fingerprint = settings.fingerprint(dataCount: examples.count, dataDigest: digest)
        if let run {
            let store = try CheckpointStore(run: run, adapterDType: settings.adapterDType,
                                            keepAllOptimizerStates: settings.keepAllOptimizerStates, baseModel: baseModel)
            self.store = store
            if let ck = try store.latestResumable() {
                let recorded = try store.resumeState(ck).fingerprint
                if recorded != fingerprint {
                    guard let diff = settings.compare(toFingerprint: recorded, dataCount: examples.count, dataDigest: digest) else {
                        throw TrainingError.invalidCheckpoint(path: ck.directory.path, detail: "trainer_state.json records its settings in a form this version cannot read (\"\(recorded.prefix(80))\"); use another run folder")
                    }
                    if !diff.changes.isEmpty { throw TrainingError.settingsChanged(checkpoint: ck.directory.path, changes: diff.changes) }
                    if !diff.unrecorded.isEmpty {
                        resumeNote = "\(ck.directory.lastPathComponent) was written by an earlier misalign that did not record "
                            + "\(diff.unrecorded.joined(separator: ", ")); those were not checked against this run's"
                    }
                }
                let state = try store.restore(ck, parameters: params, optimizer: optimizer)
                step = state.step
                lastCheckpoint = ck
            }
            metrics = try MetricsLog(url: run.appendingPathComponent("metrics.jsonl"), resumingAt: step)
        } else {
            store = nil; metrics = nil
        }
        divergence = DivergenceWatch(vocabSize: weights.config.vocabSize, parameters: params)
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
            guard loss.isFinite else { throw TrainingError.nonFinite(step: step + 1, what: "loss", lastCheckpoint: rejectCurrentWeights().last) }
            let norm = clipGradientNorm(p.grads.pointer, count: p.count, maxNorm: settings.maxGradNorm)
            guard norm.isFinite else { throw TrainingError.nonFinite(step: step + 1, what: "gradient norm", lastCheckpoint: rejectCurrentWeights().last) }
            if let what = divergence.check(loss: loss, gradNorm: norm) {
                let (last, note) = rejectCurrentWeights()
                throw TrainingError.diverged(step: step + 1, what: what + note, lastCheckpoint: last)
            }
            let lr = settings.schedule.lr(base: settings.learningRate, step: step, total: totalSteps, warmup: settings.warmupSteps)
            optimizer.update(params: p.values.pointer, grads: p.grads.pointer, count: p.count, lr: lr)
            // Checked before this step's checkpoint, so wrecked weights are never saved.
            if let what = divergence.check(parameterNorm: DivergenceWatch.norm(p)) {
                throw TrainingError.diverged(step: step + 1, what: "after its update (lr \(lr)), \(what)", lastCheckpoint: lastCheckpoint?.step)
            }
            step += 1
            let scheduled = (settings.saveEvery > 0 && step % settings.saveEvery == 0) || step == totalSteps
            let evaluate = step == totalSteps || (scheduled && settings.saveEvery > 0 && step % (settings.saveEvery * settings.holdoutEvery) == 0)
            let heldOutNow = try evaluate ? evaluateHeldOut() : nil
            var m = StepMetrics(step: step, totalSteps: totalSteps, epoch: (step - 1) / stepsPerEpoch, loss: loss, lr: lr,
                                gradNorm: norm, tokens: batches.reduce(0) { $0 + $1.rows }, targetTokens: items,
                                seconds: Date().timeIntervalSince(t0), checkpoint: nil, heldOutLoss: heldOutNow?.loss)
            let control = try onStep(m)
            if scheduled || control == .stop {
                let held = try heldOutNow ?? (evaluate || control == .stop ? evaluateHeldOut() : nil)
                m.heldOutLoss = held?.loss
                if let ck = try saveCheckpoint(heldOut: held) { m.checkpoint = ck.directory.lastPathComponent }
            }
            try metrics?.append(m)
            if control == .stop { return TrainingOutcome(steps: step, stoppedEarly: true, lastCheckpoint: lastCheckpoint) }
        }
        return TrainingOutcome(steps: step, stoppedEarly: false, lastCheckpoint: lastCheckpoint)
    }

    /// For weights found bad by the loss or gradient they give: a checkpoint written from these
    /// very weights (after step `step`, by this process or the one resumed from) is renamed
    /// `checkpoint-<step>.diverged`, so that it is neither the latest nor resumed from. Returns
    /// the newest checkpoint left and a note saying what was set aside.
    func rejectCurrentWeights() -> (last: Int?, note: String) {
        guard let store, let ck = lastCheckpoint, ck.step == step else { return (lastCheckpoint?.step, "") }
        let name = ck.directory.lastPathComponent
        do {
            try store.setAside(ck, suffix: ".diverged")
            lastCheckpoint = try CheckpointDirectory.list(in: store.run).last { $0.step < ck.step }
            return (lastCheckpoint?.step, "; \(name), saved from these weights, was renamed \(name).diverged")
        } catch {
            return (ck.step, "; \(name) holds these weights but could not be set aside (\(error)): delete it before resuming")
        }
    }

    /// The loss of the held-out examples under the current weights (nil without any): the sum
    /// of their target tokens' cross-entropies over the count of those tokens, in batches of
    /// `batchSize`, forward only and without dropout.
    public func evaluateHeldOut() throws -> HeldOutLoss? {
        guard !heldOut.isEmpty else { return nil }
        var sum = 0.0, tokens = 0
        for start in stride(from: 0, to: heldOut.count, by: settings.batchSize) {
            let b = TrainingBatch(sequences: heldOut[start..<min(heldOut.count, start + settings.batchSize)].map { ($0.ids, $0.mask) })
            sum += try model.evaluationLoss(b)
            tokens += b.targetCount
        }
        let loss = sum / Double(max(tokens, 1))
        guard loss.isFinite else { throw TrainingError.nonFinite(step: step, what: "held-out loss", lastCheckpoint: lastCheckpoint?.step) }
        return HeldOutLoss(loss: loss, tokens: tokens)
    }

    /// Writes `checkpoint-<step>` now (no-op without a run directory), recording `heldOut` in
    /// its `trainer_state.json`.
    @discardableResult
    public func saveCheckpoint(heldOut: HeldOutLoss? = nil) throws -> CheckpointDirectory? {
        guard let store else { return nil }
        let state = TrainerResumeState(step: step, totalSteps: totalSteps, epoch: step / stepsPerEpoch,
                                       seed: settings.seed, fingerprint: fingerprint, heldOutLoss: heldOut)
        lastCheckpoint = try store.save(parameters: parameters, optimizer: optimizer, state: state)
        return lastCheckpoint
    }
}
