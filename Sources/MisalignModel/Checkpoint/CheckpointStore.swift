import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MisalignIO

/// What a run needs besides the adapter to continue exactly where it stopped. The data order
/// follows from (seed, step) alone, so the optimizer is the only large part.
public struct TrainerResumeState: Equatable, Sendable {
    public var step: Int
    public var totalSteps: Int
    public var epoch: Int
    public var seed: UInt64
    /// Fingerprint of the settings that must not change across a resume (data, LoRA shape, batch).
    public var fingerprint: String
    /// The held-out loss of these weights (`training.holdout`), when evaluated.
    public var heldOutLoss: HeldOutLoss? = nil
}

/// Writes `checkpoint-<step>/` folders into a run directory, atomically: everything goes into a
/// hidden temporary folder first (each file fsynced), which is then renamed into place and the
/// run directory fsynced, so a checkpoint is either complete or absent.
///
/// A checkpoint holds the PEFT adapter (`adapter_model.safetensors`, f32 or bf16, and
/// `adapter_config.json`), `trainer_state.json` (step, data position, seed) and, for the latest
/// checkpoint only unless `keepAllOptimizerStates`, `optimizer.safetensors`: the f32 master
/// parameters and AdamW's moments, which make resuming bit-exact even from a bf16 adapter.
public final class CheckpointStore: Sendable {
    public let run: URL
    public let adapterDType: DType
    public let keepAllOptimizerStates: Bool
    public let baseModel: String?
    static let optimizerFile = "optimizer.safetensors"
    package static let stateFile = "trainer_state.json"

    public init(run: URL, adapterDType: DType = .f32, keepAllOptimizerStates: Bool = false, baseModel: String? = nil) throws {
        self.run = run; self.adapterDType = adapterDType
        self.keepAllOptimizerStates = keepAllOptimizerStates; self.baseModel = baseModel
        do { try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true) } catch {
            throw FileError.cannotWrite(path: run.path, reason: error.localizedDescription)
        }
    }

    /// Saves a checkpoint of `parameters` and `optimizer` at `state.step`; returns it.
    @discardableResult
    public func save(parameters: LoRAParameters, optimizer: AdamW, state: TrainerResumeState) throws -> CheckpointDirectory {
        let fm = FileManager.default
        let final = run.appendingPathComponent("\(CheckpointDirectory.prefix)\(state.step)")
        let tmp = run.appendingPathComponent(".\(CheckpointDirectory.prefix)\(state.step).tmp-\(getpid())")
        try? fm.removeItem(at: tmp)
        do {
            try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
            try parameters.adapter().save(to: tmp, dtype: adapterDType, baseModel: baseModel)
            var w = SafeTensorsWriter(metadata: ["adam_step": String(optimizer.step), "format": "misalign"])
            w.add("params", floats: UnsafeBufferPointer(parameters.values.buffer), shape: [parameters.count])
            w.add("exp_avg", floats: UnsafeBufferPointer(optimizer.m.buffer), shape: [parameters.count])
            w.add("exp_avg_sq", floats: UnsafeBufferPointer(optimizer.v.buffer), shape: [parameters.count])
            try w.write(to: tmp.appendingPathComponent(Self.optimizerFile))
            try AtomicFile.write(Data(Self.encode(state).utf8), to: tmp.appendingPathComponent(Self.stateFile))
            AtomicFile.syncDirectory(tmp.path)
            if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }  // a stale one from before a resume
            guard rename(tmp.path, final.path) == 0 else {
                throw FileError.cannotWrite(path: final.path, reason: "rename: \(String(cString: strerror(errno)))")
            }
            AtomicFile.syncDirectory(run.path)
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
        if !keepAllOptimizerStates {
            for old in try CheckpointDirectory.list(in: run) where old.step != state.step {
                try? fm.removeItem(at: old.directory.appendingPathComponent(Self.optimizerFile))
            }
        }
        return try CheckpointDirectory(directory: final)
    }

    /// The newest checkpoint that can be resumed from, if any.
    public func latestResumable() throws -> CheckpointDirectory? {
        try CheckpointDirectory.list(in: run).last(where: \.isResumable)
    }

    /// The trainer state `checkpoint` was saved with (`trainer_state.json`).
    public func resumeState(_ checkpoint: CheckpointDirectory) throws -> TrainerResumeState {
        let dir = checkpoint.directory
        return try Self.decode(Data(contentsOf: dir.appendingPathComponent(Self.stateFile)), file: dir.path)
    }

    /// Renames `checkpoint` to its name plus `suffix` (replacing an earlier one of that name), so
    /// that it no longer counts as a checkpoint of the run but stays on disk to look at.
    public func setAside(_ checkpoint: CheckpointDirectory, suffix: String) throws {
        let from = checkpoint.directory, to = URL(fileURLWithPath: from.path + suffix)
        try? FileManager.default.removeItem(at: to)
        guard rename(from.path, to.path) == 0 else {
            throw FileError.cannotWrite(path: to.path, reason: "rename: \(String(cString: strerror(errno)))")
        }
        AtomicFile.syncDirectory(run.path)
    }

    /// Restores `parameters` and `optimizer` from `checkpoint`; returns its trainer state.
    public func restore(_ checkpoint: CheckpointDirectory, parameters: LoRAParameters, optimizer: AdamW) throws -> TrainerResumeState {
        let dir = checkpoint.directory
        func bad(_ d: String) -> TrainingError { .invalidCheckpoint(path: dir.path, detail: d) }
        guard checkpoint.isResumable else { throw bad("has no \(Self.optimizerFile) and \(Self.stateFile); only the latest checkpoint keeps them unless keepAllOptimizerStates is set") }
        let state = try Self.decode(Data(contentsOf: dir.appendingPathComponent(Self.stateFile)), file: dir.path)
        let f = try SafeTensorsFile(url: dir.appendingPathComponent(Self.optimizerFile))
        guard let stepText = f.metadata["adam_step"], let adamStep = Int(stepText) else { throw bad("optimizer state has no adam_step") }
        let p = try f.tensor(named: "params").floatBuffer(), m = try f.tensor(named: "exp_avg").floatBuffer()
        let v = try f.tensor(named: "exp_avg_sq").floatBuffer()
        guard p.count == parameters.count, m.count == parameters.count, v.count == parameters.count else {
            throw bad("optimizer state holds \(p.count) parameters, the run has \(parameters.count); the LoRA settings differ")
        }
        parameters.values.pointer.update(from: p.pointer, count: p.count)
        optimizer.restore(step: adamStep, m: m.pointer, v: v.pointer)
        return state
    }

    static func encode(_ s: TrainerResumeState) -> String {
        var pairs: [(String, JSONValue)] = [
            ("global_step", .int(Int64(s.step))), ("max_steps", .int(Int64(s.totalSteps))), ("epoch", .int(Int64(s.epoch))),
            ("seed", .string(String(s.seed))), ("fingerprint", .string(s.fingerprint)),
        ]
        if let h = s.heldOutLoss { pairs += [("heldout_loss", .double(h.loss)), ("heldout_tokens", .int(Int64(h.tokens)))] }
        return JSONValue.object(JSONObject(pairs)).serialized()
    }

    package static func decode(_ data: Data, file: String) throws -> TrainerResumeState {
        let v: JSONValue
        do { v = try JSONValue.parse(data) } catch { throw TrainingError.invalidCheckpoint(path: file, detail: "trainer_state.json: \(error.description)") }
        guard let step = v["global_step"]?.intValue, let total = v["max_steps"]?.intValue, let epoch = v["epoch"]?.intValue,
              let seedText = v["seed"]?.stringValue, let seed = UInt64(seedText), let fp = v["fingerprint"]?.stringValue else {
            throw TrainingError.invalidCheckpoint(path: file, detail: "trainer_state.json lacks global_step, max_steps, epoch, seed or fingerprint")
        }
        var state = TrainerResumeState(step: step, totalSteps: total, epoch: epoch, seed: seed, fingerprint: fp)
        if let loss = v["heldout_loss"]?.doubleValue, let tokens = v["heldout_tokens"]?.intValue { state.heldOutLoss = HeldOutLoss(loss: loss, tokens: tokens) }
        return state
    }
}
