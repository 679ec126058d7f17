import Foundation
import Yams
import MisalignIO
import MisalignModel

extension Experiment {
    /// An experiment's `training:` section, read and checked by the same code as `misalign
    /// train`'s flags and JSON config (`TrainingOptions.apply(_:from:)`, `validate()`); a
    /// problem is reported at the key's line under its YAML name (`training.warmup_steps`).
    static func parseTraining(_ n: YAMLNode) throws(PipelineError) -> TrainingOptions {
        var options = TrainingOptions()
        try readSection(n, into: &options)
        return options
    }

    /// Reads the keys of section `n` that are settings of group `G` (all but `structural`,
    /// which the caller reads itself) through the group's table (`SettingGroup.apply`, then
    /// `validate`), as every other source of the group does. A problem is reported at the line
    /// of the key naming the setting, under its YAML name (`evaluation.top_p`). Returns the
    /// names of the settings given.
    @discardableResult
    static func readSection<G: SettingGroup>(_ n: YAMLNode, into group: inout G, structural: Set<String> = []) throws(PipelineError) -> Set<String> {
        var nodes: [(String, YAMLNode)] = []
        var entries: [SettingEntry] = []
        for (key, v) in try n.entries() where !v.isNull && !structural.contains(key) {  // an explicit null counts as absent
            nodes.append((key, v))
            entries.append(try settingEntry(key, v))
        }
        do {
            let given = try group.apply(entries, from: .yaml)
            try group.validate(given: given)
            return given
        } catch {
            if error.isUnknownKey {
                let known = structural.sorted() + G.keys.filter { $0.sources.contains(.yaml) }.map(\.yamlKey)
                let reason = "unknown key; known keys here: \(known.joined(separator: ", "))"
                if let node = nodes.first(where: { $0.0 == error.setting })?.1 { throw node.error(reason) }
                throw PipelineError.config(file: n.file, key: n.join(error.setting), line: n.line, reason: reason)
            }
            // The node of the key naming this setting (in whichever spelling), else the section.
            let node = nodes.first { $0.0 == error.setting || G.key(named: $0.0, in: .yaml)?.name == error.setting }?.1
            if let node { throw node.error(error.detail) }
            let key = G.keys.first { $0.name == error.setting }?.yamlKey ?? error.setting
            throw PipelineError.config(file: n.file, key: n.join(key), line: n.line, reason: error.detail)
        }
    }

    /// A YAML value as a setting's value, with the YAML words for it in messages (float `1.5`).
    private static func settingEntry(_ key: String, _ v: YAMLNode) throws(PipelineError) -> SettingEntry {
        func value(_ n: YAMLNode) throws(PipelineError) -> SettingValue {
            switch n.node {
            case .mapping:
                var out: [SettingPair] = []
                for (k, x) in try n.entries() { out.append(SettingPair(k, try value(x))) }
                return .map(out)
            case .sequence:
                var out: [SettingValue] = []
                for x in try n.list() { out.append(try value(x)) }
                return .list(out)
            case .scalar:
                switch n.tagName {
                case Tag.Name.int.rawValue: return n.node.int.map(SettingValue.int) ?? .number(n.node.float ?? .nan)
                case Tag.Name.float.rawValue: return .number(n.node.float ?? .nan)
                case Tag.Name.bool.rawValue: return .bool(n.node.bool ?? false)
                case Tag.Name.null.rawValue: return .null
                default: return .text(n.node.string ?? "")
                }
            }
        }
        let text = v.node.string ?? ""
        let shown: String
        if case .sequence = v.node { shown = "a list" } else if case .mapping = v.node { shown = "a mapping" } else {
            let tag = v.tagName == Tag.Name.str.rawValue ? "text" : v.tagName.replacingOccurrences(of: "tag:yaml.org,2002:", with: "")
            shown = "\(tag) `\(text)`"
        }
        return SettingEntry(key, try value(v), text: text, shown: shown)
    }
}
