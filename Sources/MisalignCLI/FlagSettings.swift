import ArgumentParser
import MisalignCore

/// A command's flags that are settings of a library group (`SettingGroup`: evaluation,
/// generation, judges, detection), under their flag names; flags not given are absent, so the
/// group's values (its defaults, or a settings file's) stay. `apply(to:)` reads them through the
/// group's one table, the same code that reads an experiment's YAML section, and reports a
/// problem as a usage error naming the flag.
struct FlagSettings {
    private(set) var entries: [SettingEntry] = []

    init() {}
    /// The entries of several flag groups together (one command's flags for one table).
    init(merging parts: [FlagSettings]) { entries = parts.flatMap(\.entries) }

    mutating func add(_ flag: String, _ value: SettingValue?) {
        if let value { entries.append(SettingEntry(flag, value)) }
    }
    mutating func add(_ flag: String, _ v: Int?) { add(flag, v.map { SettingValue.int($0) }) }
    mutating func add(_ flag: String, _ v: Double?) { add(flag, v.map { SettingValue.number($0) }) }
    mutating func add(_ flag: String, _ v: String?) { add(flag, v.map { SettingValue.text($0) }) }
    mutating func add(_ flag: String, _ v: [String]) { if !v.isEmpty { add(flag, .list(v.map { .text($0) })) } }
    mutating func add<E: RawRepresentable>(_ flag: String, _ v: E?) where E.RawValue == String { add(flag, v.map { .text($0.rawValue) }) }

    /// Reads the entries into `group` and checks it; a problem names the flag as typed.
    @discardableResult
    func apply<G: SettingGroup>(to group: inout G) throws -> Set<String> {
        do {
            let given = try group.apply(entries, from: .flags)
            try group.validate(given: given)
            return given
        } catch {
            throw ValidationError(describe(error, in: G.self))
        }
    }

    /// `--top-p is 0.0; must be in (0, 1]`: the setting under the flag that set it.
    func describe<G: SettingGroup>(_ error: SettingError, in _: G.Type) -> String {
        let flag = entries.first { $0.key == error.setting || G.key(named: $0.key, in: .flags)?.name == error.setting }?.key ?? error.setting
        return "--\(flag) \(error.detail)"
    }
}
