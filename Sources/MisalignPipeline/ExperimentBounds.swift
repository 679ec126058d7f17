import Foundation

/// What a config may hold beyond its types: sane bounds, dataset names, a readable file.
extension Experiment {
    /// The config file's text, or what is wrong with the path (a folder, missing, unreadable,
    /// not UTF-8) in words rather than Foundation's error codes.
    static func readConfig(_ url: URL) throws(PipelineError) -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw .missingInput(key: "config", path: url.path, reason: "no such file; `misalign init \(url.lastPathComponent)` writes an example")
        }
        if isDir.boolValue {
            throw .missingInput(key: "config", path: url.path, reason: "is a folder; give the experiment's YAML file (e.g. misalign run study.yaml)")
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .missingInput(key: "config", path: url.path, reason: "cannot be read (permission denied?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .missingInput(key: "config", path: url.path, reason: "is not UTF-8 text; save the YAML as UTF-8")
        }
        return text
    }

    /// Limits past which a value is a typo, not a choice (training's are `TrainingSettings.Bounds`).
    public enum Bounds {
        public static let seeds = 10_000
        public static let samples = 10_000
        public static let maxNewTokens = 131_072
        public static let questions = 10_000
        public static let topK = 1_000_000
        public static let inFlight = 4_096
        public static let attempts = 100
        public static let batchSequences = 65_536
        public static let resamples = 1_000_000
        public static let threads = 4_096
        public static let seed = Int(Int32.max)
        /// A dataset name's longest length (it names the checkpoint folder).
        public static let nameLength = 64
    }

    /// A dataset name is an identifier: letters, digits, `_`, `-`, `.`, not starting with `.`,
    /// at most `Bounds.nameLength` characters (it becomes part of a folder's name).
    static func checkName(_ name: String, _ node: YAMLNode) throws(PipelineError) {
        let ok = !name.isEmpty && name.count <= Bounds.nameLength && !name.hasPrefix(".")
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
        if !ok {
            throw node.error("`\(name)` is not a usable dataset name: use letters, digits, '_', '-' and '.', not starting with '.', "
                             + "at most \(Bounds.nameLength) characters (it names the run's checkpoint folder)")
        }
    }
}
