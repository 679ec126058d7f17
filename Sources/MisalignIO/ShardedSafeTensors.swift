import Foundation

/// The weights of a model folder: a single `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` (`{"metadata": {...}, "weight_map": {tensor: shard file}}`),
/// as Hugging Face `save_pretrained` writes them.
public final class ShardedSafeTensors: TensorSource, Sendable {
    public let directory: String
    /// The index file, when the weights are sharded.
    public let indexPath: String?
    /// Shards in file-name order.
    public let shards: [SafeTensorsFile]
    /// The index's `metadata` (e.g. `total_size`), empty without an index.
    public let indexMetadata: JSONObject
    private let location: [String: Int]

    public static let indexFileName = "model.safetensors.index.json"

    /// Opens the weights in `directory`: the index if there is one, else `model.safetensors`,
    /// else every `*.safetensors` file in it, each mapped or read into huge pages (`FileResidency`;
    /// `.auto` decides once, by the size of all of them).
    public convenience init(directory url: URL, residency: FileResidency = .mapped) throws {
        let dir = url.path
        let fm = FileManager.default
        let index = url.appendingPathComponent(Self.indexFileName)
        if fm.fileExists(atPath: index.path) {
            try self.init(indexURL: index, residency: residency)
            return
        }
        let single = url.appendingPathComponent("model.safetensors")
        if fm.fileExists(atPath: single.path) {
            let r = residency.resolved(forBytes: Self.totalSize([single.path]))
            try self.init(directory: dir, files: [try SafeTensorsFile(url: single, residency: r)])
            return
        }
        let names = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !names.isEmpty else { throw SafeTensorsError.noWeights(directory: dir) }
        let paths = names.map { "\(dir)/\($0)" }
        let r = residency.resolved(forBytes: Self.totalSize(paths))
        try self.init(directory: dir, files: paths.map { try SafeTensorsFile(path: $0, residency: r) })
    }

    /// Bytes of the files that exist among `paths` (for `FileResidency.auto`).
    static func totalSize(_ paths: [String]) -> Int {
        paths.reduce(0) { $0 + (((try? FileManager.default.attributesOfItem(atPath: $1))?[.size] as? NSNumber)?.intValue ?? 0) }
    }

    /// Opens a sharded checkpoint from its index file, checking that every shard it names
    /// exists and holds the tensors the index places in it.
    public init(indexURL: URL, residency: FileResidency = .mapped) throws {
        let path = indexURL.path
        let dir = indexURL.deletingLastPathComponent().path
        let data: Data
        do { data = try Data(contentsOf: indexURL) } catch {
            throw FileError.cannotOpen(path: path, reason: "\(error.localizedDescription)")
        }
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch {
            throw SafeTensorsError.invalidIndex(file: path, detail: "not valid JSON (\(error.description))")
        }
        guard let weightMap = root["weight_map"]?.objectValue else {
            throw SafeTensorsError.invalidIndex(file: path, detail: "no \"weight_map\" object")
        }
        var shardNames: [String] = []
        for (tensor, shard) in weightMap.pairs {
            guard let s = shard.stringValue, !s.isEmpty, !s.contains("/") else {
                throw SafeTensorsError.invalidIndex(file: path, detail: "weight_map entry \"\(tensor)\" is not a file name in the same folder")
            }
            if !shardNames.contains(s) { shardNames.append(s) }
        }
        shardNames.sort()
        let r = residency.resolved(forBytes: Self.totalSize(shardNames.map { "\(dir)/\($0)" }))
        var files: [SafeTensorsFile] = []
        for s in shardNames {
            let p = "\(dir)/\(s)"
            guard FileManager.default.fileExists(atPath: p) else { throw SafeTensorsError.missingShard(index: path, shard: s) }
            files.append(try SafeTensorsFile(path: p, residency: r))
        }
        for (tensor, shard) in weightMap.pairs {
            let file = files[shardNames.firstIndex(of: shard.stringValue!)!]
            guard file.contains(tensor) else {
                throw SafeTensorsError.tensorMissingFromShard(index: path, tensor: tensor, shard: shard.stringValue!)
            }
        }
        directory = dir
        indexPath = path
        shards = files
        indexMetadata = root["metadata"]?.objectValue ?? JSONObject()
        location = try Self.locate(files)
    }

    private init(directory: String, files: [SafeTensorsFile]) throws {
        self.directory = directory
        indexPath = nil
        shards = files
        indexMetadata = JSONObject()
        location = try Self.locate(files)
    }

    /// Tensor name -> shard number; a name in two shards is an error.
    private static func locate(_ files: [SafeTensorsFile]) throws -> [String: Int] {
        var location: [String: Int] = [:]
        for (i, f) in files.enumerated() {
            for t in f.tensorInfos {
                if location[t.name] != nil { throw SafeTensorsError.duplicateTensor(file: f.path, name: t.name) }
                location[t.name] = i
            }
        }
        return location
    }

    public var tensorInfos: [TensorInfo] { shards.flatMap(\.tensorInfos) }
    public func contains(_ name: String) -> Bool { location[name] != nil }

    /// The file that holds `name`.
    public func shard(containing name: String) -> SafeTensorsFile? { location[name].map { shards[$0] } }

    public func tensor(named name: String) throws -> SafeTensor {
        guard let i = location[name] else {
            throw SafeTensorsError.tensorNotFound(file: indexPath ?? directory, name: name)
        }
        return try shards[i].tensor(named: name)
    }
}
