import Foundation
import MisalignIO

/// What a checkpoint holds for generation to load.
public enum CheckpointWeights: Sendable {
    /// A LoRA adapter, applied over the base model's weights.
    case lora(LoRAAdapter)
    /// A whole Qwen2 model in Hugging Face layout (`config.json` and `*.safetensors`), as full
    /// fine-tuning or a merged adapter writes it: generation loads it in place of the base
    /// model (same precision and weight residency) and keeps the base tokenizer.
    case model(directory: URL)
}

/// A saved state of training at some optimizer step: what the evaluation side needs from a
/// checkpoint.
///
/// Implement `weights()` (what generation loads: a LoRA adapter or a whole model), or only
/// `loadAdapter()` for a LoRA checkpoint (as conformers written before `weights()` existed do):
/// each has a default built on the other.
public protocol Checkpoint: Sendable {
    /// Optimizer steps taken when it was saved.
    var step: Int { get }
    var directory: URL { get }
    /// What generation loads. Default: `.lora(try loadAdapter())`.
    func weights() throws -> CheckpointWeights
    /// The LoRA adapter, for checkpoints that hold one. Default: the adapter `weights()`
    /// returns; a checkpoint holding a whole model throws `TrainingError.invalidCheckpoint`.
    func loadAdapter() throws -> LoRAAdapter
}

/// Which conforming type is inside the default `weights()`, so that a type implementing
/// neither requirement gets an error instead of endless recursion between the two defaults.
private enum CheckpointDefaults {
    @TaskLocal static var inDefaultWeights: ObjectIdentifier?
}

extension Checkpoint {
    public func weights() throws -> CheckpointWeights {
        try CheckpointDefaults.$inDefaultWeights.withValue(ObjectIdentifier(Self.self)) { .lora(try loadAdapter()) }
    }

    public func loadAdapter() throws -> LoRAAdapter {
        if CheckpointDefaults.inDefaultWeights == ObjectIdentifier(Self.self) {
            throw TrainingError.invalidCheckpoint(path: directory.path, detail: "\(Self.self) implements neither weights() nor loadAdapter(); a Checkpoint must implement one of them")
        }
        switch try weights() {
        case .lora(let adapter): return adapter
        case .model(let dir):
            throw TrainingError.invalidCheckpoint(path: directory.path, detail: "holds a whole model (\(dir.path)), not a LoRA adapter; load it through weights()")
        }
    }
}

/// A `checkpoint-<step>/` folder holding a PEFT adapter, written by this trainer or by
/// transformers' Trainer + PEFT (`adapter_model.safetensors`, `adapter_config.json`, and
/// optionally `trainer_state.json` with `global_step`), or a whole model, written by full
/// fine-tuning (`config.json` and `model.safetensors` or a sharded `model.safetensors.index.json`).
public struct CheckpointDirectory: Checkpoint, Equatable {
    public let step: Int
    public let directory: URL

    public static let prefix = "checkpoint-"

    /// Reads the step from `trainer_state.json`'s `global_step` when present, else from the name.
    public init(directory: URL) throws {
        self.directory = directory
        let stateURL = directory.appendingPathComponent("trainer_state.json")
        if let data = try? Data(contentsOf: stateURL), let v = try? JSONValue.parse(data), let s = v["global_step"]?.intValue {
            step = s
        } else if directory.lastPathComponent.hasPrefix(Self.prefix), let s = Int(directory.lastPathComponent.dropFirst(Self.prefix.count)) {
            step = s
        } else {
            throw TrainingError.invalidCheckpoint(path: directory.path, detail: "neither trainer_state.json global_step nor a checkpoint-<step> name gives its step")
        }
    }

    /// The adapter when the folder holds one (or its adapter files are incomplete: their
    /// error), else the whole model it holds. (`loadAdapter()` is the protocol's default: the
    /// adapter, or an error naming the folder when it holds a whole model.)
    public func weights() throws -> CheckpointWeights {
        if !Self.holdsAdapterFiles(directory), Self.holdsModel(directory) { return .model(directory: directory) }
        return .lora(try LoRAAdapter(directory: directory))
    }

    static func holdsAdapterFiles(_ dir: URL) -> Bool {
        ["adapter_model.safetensors", "adapter_config.json"].contains { FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path) }
    }

    /// Whether `dir` holds a model in Hugging Face layout: `config.json` and the weights, in
    /// one file or sharded.
    public static func holdsModel(_ dir: URL) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: dir.appendingPathComponent("config.json").path)
            && ["model.safetensors", "model.safetensors.index.json"].contains { fm.fileExists(atPath: dir.appendingPathComponent($0).path) }
    }

    /// Whether it carries this trainer's optimizer state (so a run can resume from it).
    public var isResumable: Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(CheckpointStore.optimizerFile).path)
            && FileManager.default.fileExists(atPath: directory.appendingPathComponent(CheckpointStore.stateFile).path)
    }

    /// The complete checkpoints under `run` (folders named `checkpoint-<step>` holding an
    /// adapter or a whole model), by step. Temporary folders of an interrupted write start with "." and are ignored.
    public static func list(in run: URL) throws -> [CheckpointDirectory] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? []
        var out: [CheckpointDirectory] = []
        for name in names where name.hasPrefix(prefix) && Int(name.dropFirst(prefix.count)) != nil {
            let dir = run.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("adapter_model.safetensors").path) || holdsModel(dir) else { continue }
            out.append(try CheckpointDirectory(directory: dir))
        }
        return out.sorted { $0.step < $1.step }
    }
}
