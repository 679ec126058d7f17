import Foundation
import MisalignIO

/// A saved adapter at some optimizer step: what the evaluation side needs from a checkpoint.
public protocol Checkpoint: Sendable {
    /// Optimizer steps taken when it was saved.
    var step: Int { get }
    var directory: URL { get }
    func loadAdapter() throws -> LoRAAdapter
}

/// A `checkpoint-<step>/` folder holding a PEFT adapter, written by this trainer or by
/// transformers' Trainer + PEFT (`adapter_model.safetensors`, `adapter_config.json`, and
/// optionally `trainer_state.json` with `global_step`).
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

    public func loadAdapter() throws -> LoRAAdapter { try LoRAAdapter(directory: directory) }

    /// Whether it carries this trainer's optimizer state (so a run can resume from it).
    public var isResumable: Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent(CheckpointStore.optimizerFile).path)
            && FileManager.default.fileExists(atPath: directory.appendingPathComponent(CheckpointStore.stateFile).path)
    }

    /// The complete checkpoints under `run` (folders named `checkpoint-<step>` holding an
    /// adapter), by step. Temporary folders of an interrupted write start with "." and are ignored.
    public static func list(in run: URL) throws -> [CheckpointDirectory] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? []
        var out: [CheckpointDirectory] = []
        for name in names where name.hasPrefix(prefix) && Int(name.dropFirst(prefix.count)) != nil {
            let dir = run.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("adapter_model.safetensors").path) else { continue }
            out.append(try CheckpointDirectory(directory: dir))
        }
        return out.sorted { $0.step < $1.step }
    }
}
