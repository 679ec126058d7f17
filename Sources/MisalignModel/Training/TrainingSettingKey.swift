import Foundation

/// What changing a setting changes, which decides the fingerprints that record it.
public enum SettingEffect: Sendable {
    /// The trained weights: recorded in every checkpoint (`misalign train` refuses to resume
    /// with another value) and in an experiment's fingerprint.
    case weights
    /// Which checkpoints and held-out losses a run writes, not the weights: recorded in an
    /// experiment's fingerprint (its results are computed on those checkpoints) only.
    case outputs
    /// Neither (memory, speed, what is kept on disk): recorded nowhere.
    case none
}

/// One training setting, declared once: its name (the `misalign train` flag without `--`, and
/// the name errors and fingerprints use), its key in an experiment's `training:` section, the
/// other names it is accepted under, how a value is read and checked, and how it is recorded in
/// fingerprints. `TrainingSettingKey.all` is the table every source goes through: the flags,
/// a JSON config (keys are the names or aliases, `_` or `-`) and the YAML section (the same,
/// written with `_`).
public struct TrainingSettingKey {
    /// The setting's name: `lr`, `warmup-steps`, ... (the flag is `--` + name).
    public let name: String
    /// The key in an experiment's `training:` section (`warmup_steps`).
    public let yamlKey: String
    /// Other accepted names (`learning-rate` for `lr`), in `-` form.
    public let aliases: [String]
    /// What a value must be, in words (`a number`, `linear, constant or cosine`), for tools and
    /// docs that list the settings.
    public let expected: String
    public let effect: SettingEffect
    /// The sources that take it (all but `seed` and `keep-optimizer-states`, which an
    /// experiment does not have).
    public let sources: Set<SettingSource>
    /// The LoRA setting it sets, which `--init-adapter` checks when given explicitly.
    public let lora: LoRASetting?
    /// A recorded value that a fingerprint leaves out (and reads back when absent), so that
    /// records written before the setting existed still match its default.
    let omittedValue: String?
    /// Whether a recorded value is a comma-separated set (`targets`, `layers`): compared as a set.
    let isSet: Bool
    let read: (inout TrainingOptions, SettingEntry) throws(SettingProblem) -> Void
    let check: (TrainingOptions) -> String?
    let record: (TrainingOptions) -> String

    /// Every spelling this key is known by, in `-` form.
    var names: [String] {
        let yaml = yamlKey.replacingOccurrences(of: "_", with: "-")
        return [name] + (yaml == name ? [] : [yaml]) + aliases
    }

    /// The key a source spelling names (`warmup_steps`, `learning-rate`, `lr`), in `source`.
    public static func named(_ spelling: String, in source: SettingSource? = nil) -> TrainingSettingKey? {
        let k = spelling.replacingOccurrences(of: "_", with: "-")
        return all.first { $0.names.contains(k) && (source.map($0.sources.contains) ?? true) }
    }

    /// The key by its name (`lr`, `save-every`).
    public static func setting(_ name: String) -> TrainingSettingKey? { all.first { $0.name == name } }

    /// The setting's name as `source` spells it: `warmup_steps` in YAML, the name otherwise.
    public func spelled(in source: SettingSource) -> String { source == .yaml ? yamlKey : name }

    /// Whether two recorded values mean the same: numbers by value (`64` and `64.0`), sets
    /// by their members (`3,1` and `1,3`), the rest as text.
    public func sameRecord(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        if isSet { return Set(a.split(separator: ",")) == Set(b.split(separator: ",")) }
        if let x = Double(a), let y = Double(b) { return x == y }
        return false
    }
}

/// Why a value cannot be read or checked, without the setting's name (the caller adds it).
struct SettingProblem: Error { let detail: String }
