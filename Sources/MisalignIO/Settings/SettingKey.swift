import Foundation

/// What changing a setting changes, which decides the fingerprint that records it.
public enum SettingEffect: Sendable {
    /// The trained weights: recorded in every checkpoint (`misalign train` refuses to resume
    /// with another value) and in an experiment's fingerprint.
    case weights
    /// Which checkpoints and held-out losses a run writes, not the weights: recorded in an
    /// experiment's fingerprint (its results are computed on those checkpoints).
    case outputs
    /// The answers sampled at each checkpoint: recorded in an experiment's fingerprint (a run
    /// folder's stored answers would no longer match its settings).
    case answers
    /// A judge's verdicts: recorded in each judge's cache identity (`Judge.cacheIdentity`), so a
    /// changed value asks the verdicts afresh under the new identity; the old ones stay.
    case verdicts
    /// What is computed from the stored verdicts (aggregation, onsets, lags): recorded in an
    /// experiment's analysis fingerprint; a changed value recomputes the analysis.
    case analysis
    /// Nothing stored (memory, speed, concurrency, what is kept on disk): recorded nowhere.
    case none
}

/// One setting, declared once: its name (a command's flag without `--`, and the name errors
/// use), its key in its experiment section, the other names it is accepted under, how a value
/// is read and checked, and how it is recorded. A group's table (`SettingGroup.keys`) is what
/// every source goes through: flags, a JSON settings file (keys are the names, YAML keys or
/// aliases, with `_` or `-`), and the experiment's YAML section.
public struct SettingKey<Options> {
    /// The setting's name: `lr`, `warmup-steps`, `top-p` ... (the flag is `--` + name).
    public let name: String
    /// The key in the experiment's section (`warmup_steps`, `top_p`).
    public let yamlKey: String
    /// Other accepted names (`learning-rate` for `lr`), in `-` form.
    public let aliases: [String]
    /// What a value must be, in words (`a number`, `linear, constant or cosine`), for tools and
    /// docs that list the settings.
    public let expected: String
    public let effect: SettingEffect
    /// The sources that take it.
    public let sources: Set<SettingSource>
    /// A recorded value that a fingerprint leaves out (and reads back when absent), so that
    /// records written before the setting existed still match its default.
    public let omittedValue: String?
    /// Whether a recorded value is a comma-separated set (`targets`, `layers`): compared as a set.
    public let isSet: Bool
    let read: (inout Options, SettingEntry) throws(SettingProblem) -> Void
    let check: (Options) -> String?
    /// The value as fingerprints record it.
    public let record: (Options) -> String

    public init(name: String, yaml: String? = nil, aliases: [String] = [], expected: String, effect: SettingEffect,
                sources: Set<SettingSource> = [.flags, .json, .yaml], omittedValue: String? = nil, isSet: Bool = false,
                read: @escaping (inout Options, SettingEntry) throws(SettingProblem) -> Void,
                check: @escaping (Options) -> String? = { _ in nil }, record: @escaping (Options) -> String) {
        self.name = name; yamlKey = yaml ?? name.replacingOccurrences(of: "-", with: "_"); self.aliases = aliases
        self.expected = expected; self.effect = effect; self.sources = sources
        self.omittedValue = omittedValue; self.isSet = isSet; self.read = read; self.check = check; self.record = record
    }

    /// Every spelling this key is known by, in `-` form.
    public var names: [String] {
        let yaml = yamlKey.replacingOccurrences(of: "_", with: "-")
        return [name] + (yaml == name ? [] : [yaml]) + aliases
    }

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
public struct SettingProblem: Error, Sendable, CustomStringConvertible {
    public let detail: String
    public init(detail: String) { self.detail = detail }
    public var description: String { detail }
}

extension SettingProblem: LocalizedError {
    public var errorDescription: String? { description }
}

/// A setting that cannot be used: unknown, given twice, of the wrong type or out of range.
/// `setting` is the setting's name (a key not known, as written); `section` the experiment
/// section it belongs to (`evaluation`), for messages that name it as `evaluation.top_p`.
public struct SettingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let section: String
    public let setting: String
    public let detail: String
    /// Whether `setting` is a key the group does not have (as written).
    public let isUnknownKey: Bool
    public init(section: String, setting: String, detail: String, isUnknownKey: Bool = false) {
        self.section = section; self.setting = setting; self.detail = detail; self.isUnknownKey = isUnknownKey
    }
    /// `evaluation.top_p: is 0.0; must be in (0, 1]`: the setting as an experiment's YAML names it.
    public var description: String { "\(section).\(setting.replacingOccurrences(of: "-", with: "_")): \(detail)" }
}

extension SettingError: LocalizedError {
    public var errorDescription: String? { description }
}
