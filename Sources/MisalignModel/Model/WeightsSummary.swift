import Foundation
import MisalignIO

/// What `misalign inspect` shows of a safetensors file or a model folder; built by the library
/// so other tools can print or serialise the same facts.
public struct WeightsSummary: Sendable {
    public struct Tensor: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let bytes: Int
        public let file: String
    }
    public let path: String
    public let files: [String]
    public let tensors: [Tensor]
    /// `__metadata__` of each file (file name -> metadata).
    public let metadata: [(file: String, values: [String: String])]
    /// The decoded `config.json` when `path` is a model folder that has one.
    public let config: Qwen2Config?

    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.bytes } }
    public var totalElements: Int { tensors.reduce(0) { $0 + $1.shape.reduce(1, *) } }

    /// Reads `path`: a `.safetensors` file, a `model.safetensors.index.json`, or a model folder.
    public static func inspect(_ url: URL) throws -> WeightsSummary {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw FileError.notFound(path: url.path, what: "file or folder")
        }
        if isDir.boolValue {
            let hasConfig = FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path)
            let config = hasConfig ? try Qwen2Config.load(from: url) : nil
            let weights = try ShardedSafeTensors(directory: url)
            try config?.checkLayerCount(tensorNames: weights.tensorInfos.map(\.name), file: url.appendingPathComponent("config.json").path)
            return summary(of: weights, path: url.path, config: config)
        }
        if url.lastPathComponent.hasSuffix(".index.json") {
            return summary(of: try ShardedSafeTensors(indexURL: url), path: url.path, config: nil)
        }
        let file = try SafeTensorsFile(url: url)
        return summary(files: [file], path: url.path, config: nil)
    }

    private static func summary(of weights: ShardedSafeTensors, path: String, config: Qwen2Config?) -> WeightsSummary {
        summary(files: weights.shards, path: path, config: config)
    }

    private static func summary(files: [SafeTensorsFile], path: String, config: Qwen2Config?) -> WeightsSummary {
        var tensors: [Tensor] = []
        for f in files {
            let name = (f.path as NSString).lastPathComponent
            for t in f.tensorInfos {
                tensors.append(Tensor(name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.byteCount, file: name))
            }
        }
        tensors.sort { $0.name.compare($1.name, options: .numeric) == .orderedAscending }
        return WeightsSummary(path: path, files: files.map(\.path), tensors: tensors,
                              metadata: files.map { (($0.path as NSString).lastPathComponent, $0.metadata) },
                              config: config)
    }
}

/// Human-readable byte counts (powers of 1024).
public func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}
