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
        do { try SettingReader.apply(entries, from: source, to: &self) } catch {
            throw .invalidSetting(name: error.setting, detail: error.detail)
        }
    }

    /// Checks every setting against its range, in `TrainingSettingKey.all`'s order; the first
    /// out of range throws `TrainingError.invalidSetting` naming it, with its value and range.
    public func validate() throws(TrainingError) {
        do { try SettingReader.validate(self) } catch { throw .invalidSetting(name: error.setting, detail: error.detail) }
    }

    /// Reads a JSON config file (`misalign train --config`): an object whose keys are setting
    /// names or aliases (`lr`, `warmup-steps`, `warmup_steps`, ...). Keys it does not set keep their value.
    public mutating func apply(configFile url: URL) throws {
        do { try apply(jsonFile: url) } catch let e as SettingError { throw TrainingError.invalidSetting(name: e.setting, detail: e.detail) }
    }

    /// The settings an experiment's fingerprint records, as `training.<yaml key>` fields: those
    /// that change the weights or which checkpoints are written (`SettingEffect`), but not the
    /// seed (each run's own) nor the data (fingerprinted by content).
    public func experimentRecord() -> [(String, String)] {
        record([.weights, .outputs])
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
