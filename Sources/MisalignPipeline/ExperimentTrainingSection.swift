import Foundation
import Yams
import MisalignModel

extension Experiment {
    /// An experiment's `training:` section, read and checked by the same code as `misalign
    /// train`'s flags and JSON config (`TrainingOptions.apply(_:from:)`, `validate()`); a
    /// problem is reported at the key's line under its YAML name (`training.warmup_steps`).
    static func parseTraining(_ n: YAMLNode) throws(PipelineError) -> TrainingOptions {
        var nodes: [(String, YAMLNode)] = []
        var entries: [SettingEntry] = []
        for (key, v) in try n.entries() where !v.isNull {  // an explicit null counts as absent
            nodes.append((key, v))
            entries.append(try settingEntry(key, v))
        }
        var options = TrainingOptions()
        do {
            try options.apply(entries, from: .yaml)
            try options.validate()
        } catch {
            guard case .invalidSetting(let name, let detail) = error else { throw n.error(error.description) }
            // The node of the key naming this setting (in whichever spelling), else the section.
            let node = nodes.first { $0.0 == name || TrainingSettingKey.named($0.0, in: .yaml)?.name == name }?.1
            if let node { throw node.error(detail) }
            let key = TrainingSettingKey.setting(name)?.yamlKey ?? name
            throw PipelineError.config(file: n.file, key: n.join(key), line: n.line, reason: detail)
        }
        return options
    }

    /// A YAML value as a setting's value, with the YAML words for it in messages (float `1.5`).
    private static func settingEntry(_ key: String, _ v: YAMLNode) throws(PipelineError) -> SettingEntry {
        func value(_ n: YAMLNode) throws(PipelineError) -> SettingValue {
            switch n.node {
            case .mapping: throw n.error("expected a value or a list, found a mapping")
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
        if case .sequence = v.node { shown = "a list" } else {
            let tag = v.tagName == Tag.Name.str.rawValue ? "text" : v.tagName.replacingOccurrences(of: "tag:yaml.org,2002:", with: "")
            shown = "\(tag) `\(text)`"
        }
        return SettingEntry(key, try value(v), text: text, shown: shown)
    }
}
