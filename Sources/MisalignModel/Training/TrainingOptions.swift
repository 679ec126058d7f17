import Foundation
import MisalignIO

/// The training settings and the two options every source has beside them (`misalign train`'s
/// flags, its JSON `--config`, an experiment's `training:` section): BLAS threads and skipping
/// invalid data lines. All three are read by `apply(_:from:)` and checked by `validate()`,
/// through the one table `TrainingSettingKey.all`.
public struct TrainingOptions: Equatable, Sendable {
    public var settings: TrainingSettings
    /// BLAS threads; 0: every core.
    public var threads: Int
    /// Skip invalid data lines (counted) instead of stopping at the first.
    public var skipInvalid: Bool

    public init(settings: TrainingSettings = TrainingSettings(), threads: Int = 0, skipInvalid: Bool = false) {
        self.settings = settings; self.threads = threads; self.skipInvalid = skipInvalid
    }

    /// Sets each entry's setting (keys in any spelling `TrainingSettingKey` accepts: the name,
    /// the YAML key, an alias, with `-` or `_`); settings not given keep their value. A LoRA
    /// setting given is marked explicit (`TrainingSettings.explicitLoRA`). Ranges are left to
    /// `validate()`, so values from several sources are checked once, together.
    ///
    /// Throws `TrainingError.invalidSetting` naming the setting (by its name; an unknown key by
    /// the key as written) for an unknown key, a setting given twice, or a value of the wrong type.
    public mutating func apply(_ entries: [SettingEntry], from source: SettingSource) throws(TrainingError) {
        var given: [String: String] = [:]
        for e in entries {
            guard let key = TrainingSettingKey.named(e.key, in: source) else {
                let known = TrainingSettingKey.all.filter { $0.sources.contains(source) }.map { $0.spelled(in: source) }
                throw .invalidSetting(name: e.key, detail: "unknown key; known keys here: \(known.joined(separator: ", "))")
            }
            if let first = given[key.name] {
                throw .invalidSetting(name: key.name, detail: "is given twice, as \(first) and as \(e.key); keep one")
            }
            given[key.name] = e.key
            do { try key.read(&self, e) } catch { throw .invalidSetting(name: key.name, detail: error.detail) }
            if let l = key.lora { settings.explicitLoRA.insert(l) }
        }
    }

    /// Checks every setting against its range, in `TrainingSettingKey.all`'s order; the first
    /// out of range throws `TrainingError.invalidSetting` naming it, with its value and range.
    public func validate() throws(TrainingError) {
        for key in TrainingSettingKey.all {
            if let detail = key.check(self) { throw .invalidSetting(name: key.name, detail: detail) }
        }
    }

    /// Reads a JSON config file (`misalign train --config`): an object whose keys are setting
    /// names or aliases (`lr`, `warmup-steps`, `warmup_steps`, ...). Keys it does not set keep their value.
    public mutating func apply(configFile url: URL) throws {
        let file = url.path
        let root: JSONValue
        do { root = try JSONValue.parse(Data(contentsOf: url)) } catch let e as JSONParseError {
            throw TrainingError.invalidSetting(name: "config", detail: "\(file): \(e.description)")
        } catch { throw FileError.cannotOpen(path: file, reason: error.localizedDescription) }
        guard let obj = root.objectValue else { throw TrainingError.invalidSetting(name: "config", detail: "\(file) is not a JSON object") }
        var entries: [SettingEntry] = []
        for (key, v) in obj.pairs {
            guard let value = SettingValue(json: v) else {
                throw TrainingError.invalidSetting(name: TrainingSettingKey.named(key)?.name ?? key,
                                                   detail: "\(file): expected a value or a list, found \(v.serialized())")
            }
            entries.append(SettingEntry(key, value, text: v.serialized()))
        }
        do { try apply(entries, from: .json) } catch {
            guard case .invalidSetting(let name, let detail) = error else { throw error }
            throw TrainingError.invalidSetting(name: name, detail: "\(file): \(detail)")
        }
    }

    /// The settings an experiment's fingerprint records, as `training.<yaml key>` fields: those
    /// that change the weights or which checkpoints are written (`SettingEffect`), but not the
    /// seed (each run's own) nor the data (fingerprinted by content).
    public func experimentRecord() -> [(String, String)] {
        TrainingSettingKey.all.filter { $0.effect != .none && $0.sources.contains(.yaml) }.map { ("training.\($0.yamlKey)", $0.record(self)) }
    }
}

extension TrainingSettings {
    /// Reads a JSON config file into these settings (`TrainingOptions.apply(configFile:)`;
    /// `threads` and `skip-invalid` there need a `TrainingOptions`).
    public mutating func apply(configFile url: URL) throws {
        var o = TrainingOptions(settings: self)
        try o.apply(configFile: url)
        self = o.settings
    }

    /// Checks every setting against its range (`TrainingOptions.validate`).
    public func validate() throws {
        try TrainingOptions(settings: self).validate()
    }
}
