import Foundation
import MisalignIO
import MisalignModel

/// What `misalign inspect` says about folders that are not plain weights: a PEFT adapter, a
/// checkpoint, or a pipeline run directory.
public enum Inspection {
    /// Describes `url` when it is an adapter, checkpoint or run folder; nil for anything else
    /// (weights files and model folders are `WeightsSummary`'s).
    public static func describe(_ url: URL) throws -> JSONValue? {
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent(RunStore.fileName).path) { return try run(url) }
        if fm.fileExists(atPath: url.appendingPathComponent("adapter_config.json").path) { return try adapter(url) }
        return nil
    }

    /// Rank, alpha, scale, modules, layers and parameter count of a PEFT adapter folder, and
    /// the step when it is a checkpoint.
    public static func adapter(_ url: URL) throws -> JSONValue {
        let a = try LoRAAdapter(directory: url)
        let c = a.config
        let modules = Array(Set(a.keys.map(\.module))).sorted().map(\.rawValue)
        let layers = Array(Set(a.keys.map(\.layer))).sorted()
        var o: [(String, JSONValue)] = [
            ("kind", .string("adapter")), ("path", .string(url.path)), ("rank", .int(Int64(c.rank))), ("alpha", .double(c.alpha)),
            ("rslora", .bool(c.useRSLoRA)), ("scale", .double(Double(c.scale))), ("modules", .array(modules.map { .string($0) })),
            ("layers", .array(layers.map { .int(Int64($0)) })), ("pairs", .int(Int64(a.keys.count))),
            ("parameters", .int(Int64(a.parameterCount))),
        ]
        if let ck = try? CheckpointDirectory(directory: url) {
            o[0] = ("kind", .string("checkpoint"))
            o.append(("step", .int(Int64(ck.step))))
            o.append(("resumable", .bool(ck.isResumable)))
        }
        return .object(JSONObject(o))
    }

    /// Row counts of a run store, and its status per stage.
    public static func run(_ url: URL) throws -> JSONValue {
        let store = try RunStore(run: url, create: false)
        var tables: [(String, JSONValue)] = []
        for t in ["runs", "checkpoints", "metrics", "generations", "judgments", "aggregates", "onsets", "lags", "units"] {
            tables.append((t, .int(Int64(try store.count(t)))))
        }
        var o: [(String, JSONValue)] = [("kind", .string("run")), ("path", .string(url.path)),
                                        ("config", .string(try store.meta("config_path") ?? "")), ("rows", .object(JSONObject(tables)))]
        o.append(("lag_summary", .array(try store.lagSummaries().map { r in
            .object(JSONObject([("dataset", .string(r.dataset)), ("judge", .string(r.judge)),
                                ("seeds", .int(Int64(r.seeds))), ("median_lag_steps", r.medianLag.map { .double($0) } ?? .null)]))
        })))
        return .object(JSONObject(o))
    }

    /// A few readable lines of `describe`'s JSON.
    public static func text(_ v: JSONValue) -> String {
        guard let o = v.objectValue else { return v.serialized() }
        return o.pairs.map { k, v in
            switch v {
            case .string(let s): return "\(k): \(s)"
            case .object(let inner): return "\(k): " + inner.pairs.map { "\($0.0) \($0.1.serialized())" }.joined(separator: ", ")
            default: return "\(k): \(v.serialized())"
            }
        }.joined(separator: "\n")
    }
}
