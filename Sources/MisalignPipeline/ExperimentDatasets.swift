import Foundation

extension Experiment {
    /// The `datasets:` section. Each entry is either a chat JSONL file (`medical: data/medical.jsonl`,
    /// one run dataset named `medical`) or a group of levels of one task with an optional
    /// matched control:
    ///
    /// ```yaml
    /// datasets:
    ///   medical:
    ///     normal: data/mistake_medical/normal.jsonl
    ///     misaligned_1: data/mistake_medical/misaligned_1.jsonl
    ///     misaligned_2: data/mistake_medical/misaligned_2.jsonl
    ///     control: normal            # optional: the level every other level is compared with
    /// ```
    ///
    /// Each level is its own run dataset named `GROUP.LEVEL` (`medical.misaligned_2`), in the
    /// order written; `control` maps every other level of the group to its control's run dataset.
    static func parseDatasets(_ node: YAMLNode?, path: (YAMLNode) throws(PipelineError) -> URL) throws(PipelineError)
        -> (datasets: [(name: String, path: URL)], controls: [String: String]) {
        var datasets: [(name: String, path: URL)] = [], controls: [String: String] = [:]
        guard let node else { return ([], [:]) }
        func add(_ name: String, _ v: YAMLNode) throws(PipelineError) {
            try checkName(name, v)
            if datasets.contains(where: { $0.name == name }) {
                throw v.error("names the run dataset `\(name)` a second time (a group's levels are named GROUP.LEVEL); rename one")
            }
            datasets.append((name, try path(v)))
        }
        for (name, v) in try node.entries() {
            guard v.isMapping else { try add(name, v); continue }
            try checkName(name, v)
            var levels: [String] = [], control: (name: String, node: YAMLNode)?
            for (level, file) in try v.entries() {
                if level == "control" { control = (try file.string(), file); continue }
                try add("\(name).\(level)", file)
                levels.append(level)
            }
            guard !levels.isEmpty else { throw v.error("names no level; give LEVEL: FILE entries (e.g. normal: data/normal.jsonl)") }
            if let control {
                guard levels.contains(control.name) else {
                    throw control.node.error("`\(control.name)` is not a level of \(name) (\(levels.joined(separator: ", "))); name one of them")
                }
                guard levels.count >= 2 else { throw control.node.error("is the group's only level; add the levels to compare with it") }
                for l in levels where l != control.name { controls["\(name).\(l)"] = "\(name).\(control.name)" }
            }
        }
        return (datasets, controls)
    }
}
