import Foundation

/// A group of settings declared once in a table (`keys`) and read from every source through
/// the same code: a command's flags, a JSON settings file, an experiment's YAML section
/// (`section`). `apply(_:from:)` reads, `validate()` checks, `record(_:)` gives the values that
/// fingerprints store. Training, evaluation (sampling), generation, judging and detection are
/// groups; a user's tool can declare its own.
public protocol SettingGroup {
    /// The experiment section the group's keys live in (`training`, `evaluation`).
    static var section: String { get }
    /// Every setting of the group, in the order fingerprints record them and validation
    /// checks them.
    static var keys: [SettingKey<Self>] { get }
    /// A check across settings, after each has passed its own: the name of the setting at
    /// fault and why (`given` holds the names of the settings a source set). Nil when fine.
    func crossCheck(given: Set<String>) -> (setting: String, detail: String)?
    /// Called after a source's settings are read, with the names of those it set (training
    /// marks the LoRA settings given explicitly).
    mutating func didApply(given: Set<String>)
}

extension SettingGroup {
    public func crossCheck(given: Set<String>) -> (setting: String, detail: String)? { nil }
    public mutating func didApply(given: Set<String>) {}

    /// The key a source spelling names (`warmup_steps`, `learning-rate`, `lr`), in `source`.
    public static func key(named spelling: String, in source: SettingSource? = nil) -> SettingKey<Self>? {
        let k = spelling.replacingOccurrences(of: "_", with: "-")
        return keys.first { $0.names.contains(k) && (source.map($0.sources.contains) ?? true) }
    }

    /// Sets each entry's setting (`SettingReader.apply`); returns the names of those set.
    @discardableResult
    public mutating func apply(_ entries: [SettingEntry], from source: SettingSource) throws(SettingError) -> Set<String> {
        try SettingReader.apply(entries, from: source, to: &self)
    }

    /// Checks every setting (`SettingReader.validate`).
    public func validate(given: Set<String> = []) throws(SettingError) {
        try SettingReader.validate(self, given: given)
    }

    /// The recorded values of the settings with one of `effects` that `source` has, as
    /// (`section.yaml_key`, value) fields.
    public func record(_ effects: Set<SettingEffect>, source: SettingSource = .yaml) -> [(String, String)] {
        Self.keys.filter { effects.contains($0.effect) && $0.sources.contains(source) }.map { ("\(Self.section).\($0.yamlKey)", $0.record(self)) }
    }

    /// Whether two recorded values of field `section.key` mean the same (`SettingKey.sameRecord`);
    /// nil when the field is not one of this group's.
    public static func sameField(_ field: String, _ a: String, _ b: String) -> Bool? {
        guard field.hasPrefix(section + "."), let key = key(named: String(field.dropFirst(section.count + 1)), in: .yaml) else { return nil }
        return key.sameRecord(a, b)
    }

    /// The entries of a JSON object of settings (a JSON settings file), keys as written.
    public static func entries(json object: JSONObject) -> [SettingEntry] {
        object.pairs.map { SettingEntry($0.0, SettingValue(json: $0.1), text: $0.1.serialized()) }
    }

    /// Reads a JSON settings file: an object whose keys are setting names, YAML keys or
    /// aliases. Keys it does not set keep their value. A problem names the file.
    @discardableResult
    public mutating func apply(jsonFile url: URL) throws -> Set<String> {
        let file = url.path
        let root: JSONValue
        do { root = try JSONValue.parse(Data(contentsOf: url)) } catch let e as JSONParseError {
            throw SettingError(section: Self.section, setting: "config", detail: "\(file): \(e.description)")
        } catch { throw FileError.cannotOpen(path: file, reason: error.localizedDescription) }
        guard let obj = root.objectValue else { throw SettingError(section: Self.section, setting: "config", detail: "\(file) is not a JSON object") }
        do { return try apply(Self.entries(json: obj), from: .json) } catch {
            throw SettingError(section: Self.section, setting: error.setting, detail: "\(file): \(error.detail)")
        }
    }
}

/// The one reader of every group's settings: what `SettingGroup.apply` and `validate` do (a
/// group that keeps its own error type, as `TrainingOptions` does, calls these and maps it).
public enum SettingReader {
    /// Sets each entry's setting (keys in any spelling the table accepts); settings not given
    /// keep their value. Ranges are left to `validate()`, so values from several sources are
    /// checked once, together. Entries are applied in the table's order, so a setting that
    /// resets others (a preset) comes first whatever the source's order. Returns the names of
    /// the settings set.
    ///
    /// Throws `SettingError` naming the setting (an unknown key as written) for an unknown key,
    /// a setting given twice, or a value of the wrong type.
    @discardableResult
    public static func apply<G: SettingGroup>(_ entries: [SettingEntry], from source: SettingSource, to group: inout G) throws(SettingError) -> Set<String> {
        var given: [String: String] = [:]
        var found: [(SettingKey<G>, SettingEntry)] = []
        for e in entries {
            guard let key = G.key(named: e.key, in: source) else {
                let known = G.keys.filter { $0.sources.contains(source) }.map { $0.spelled(in: source) }
                throw SettingError(section: G.section, setting: e.key, detail: "unknown key; known keys here: \(known.joined(separator: ", "))",
                                   isUnknownKey: true)
            }
            if let first = given[key.name] {
                throw SettingError(section: G.section, setting: key.name, detail: "is given twice, as \(first) and as \(e.key); keep one")
            }
            given[key.name] = e.key
            found.append((key, e))
        }
        let order = Dictionary(uniqueKeysWithValues: G.keys.enumerated().map { ($0.element.name, $0.offset) })
        for (key, e) in found.sorted(by: { order[$0.0.name]! < order[$1.0.name]! }) {
            do { try key.read(&group, e) } catch { throw SettingError(section: G.section, setting: key.name, detail: error.detail) }
        }
        group.didApply(given: Set(given.keys))
        return Set(given.keys)
    }

    /// Checks every setting against its range, in the table's order, then `crossCheck`; the
    /// first problem throws `SettingError` naming the setting, its value and its range.
    public static func validate<G: SettingGroup>(_ group: G, given: Set<String> = []) throws(SettingError) {
        for key in G.keys {
            if let detail = key.check(group) { throw SettingError(section: G.section, setting: key.name, detail: detail) }
        }
        if let (setting, detail) = group.crossCheck(given: given) { throw SettingError(section: G.section, setting: setting, detail: detail) }
    }
}
