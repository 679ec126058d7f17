import Foundation
import MisalignIO
import MisalignModel

/// Finds the complete `checkpoint-N/` folders of a folder a training job is still writing.
///
/// A folder counts when its weights are whole and the job has finished writing it:
/// - weights: `adapter_config.json` parses as a JSON object and `adapter_model.safetensors`'s
///   header parses and accounts for the file's size exactly (a whole model instead: its
///   `config.json` parses and each safetensors file does the same), and
/// - finished: `trainer_state.json` parses (Hugging Face Trainer writes it after the weights),
///   or nothing in the folder changed size or time between two looks (writers without it), or
///   the job has said it is done (its done file exists).
///
/// A half-written folder is therefore skipped until a later look, never registered.
struct FollowScan {
    /// What a folder's files looked like at the last look: name, size and mtime of each.
    private var seen: [String: [String]] = [:]

    /// The complete checkpoints under `folder` not in `known` (steps already registered), by
    /// step. `jobDone`: the job has ended, so a folder whose weights are whole counts without
    /// waiting for it to stay unchanged.
    mutating func newCheckpoints(in folder: URL, known: Set<Int>, jobDone: Bool) -> [CheckpointDirectory] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: folder.path)) ?? []
        var out: [CheckpointDirectory] = []
        for name in names where name.hasPrefix(CheckpointDirectory.prefix) {
            guard let step = Int(name.dropFirst(CheckpointDirectory.prefix.count)), !known.contains(step) else { continue }
            let dir = folder.appendingPathComponent(name)
            guard Self.weightsComplete(dir) else { seen[name] = nil; continue }
            let signature = Self.signature(dir)
            let stable = seen[name] == signature
            seen[name] = signature
            guard jobDone || stable || Self.parses(dir.appendingPathComponent("trainer_state.json")) else { continue }
            guard let ck = try? CheckpointDirectory(directory: dir), !known.contains(ck.step) else { continue }
            out.append(ck)
        }
        return out.sorted { $0.step < $1.step }
    }

    /// Whether the folder's weights are whole: an adapter, or a whole model.
    static func weightsComplete(_ dir: URL) -> Bool {
        let fm = FileManager.default
        func has(_ f: String) -> Bool { fm.fileExists(atPath: dir.appendingPathComponent(f).path) }
        if has("adapter_model.safetensors") || has("adapter_config.json") {
            return parses(dir.appendingPathComponent("adapter_config.json"))
                && safetensorsComplete(dir.appendingPathComponent("adapter_model.safetensors"))
        }
        guard parses(dir.appendingPathComponent("config.json")) else { return false }
        if has("model.safetensors") { return safetensorsComplete(dir.appendingPathComponent("model.safetensors")) }
        guard let data = fm.contents(atPath: dir.appendingPathComponent("model.safetensors.index.json").path),
              let index = try? JSONValue.parse(data), let map = index["weight_map"]?.objectValue else { return false }
        let shards = Set(map.pairs.compactMap { $0.1.stringValue })
        return !shards.isEmpty && shards.allSatisfy { safetensorsComplete(dir.appendingPathComponent($0)) }
    }

    /// Whether a safetensors file's header parses and its tensors cover the file exactly.
    static func safetensorsComplete(_ url: URL) -> Bool {
        (try? SafeTensorsFile(url: url)) != nil
    }

    /// Whether `url` holds a JSON object.
    static func parses(_ url: URL) -> Bool {
        guard let data = FileManager.default.contents(atPath: url.path), let v = try? JSONValue.parse(data) else { return false }
        return v.objectValue != nil
    }

    /// Each file's name, size and modification time, sorted.
    static func signature(_ dir: URL) -> [String] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { n in
            let a = try? fm.attributesOfItem(atPath: dir.appendingPathComponent(n).path)
            let size = (a?[.size] as? NSNumber)?.int64Value ?? -1
            let time = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(n) \(size) \(time)"
        }
    }
}
