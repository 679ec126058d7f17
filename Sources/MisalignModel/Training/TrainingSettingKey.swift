import Foundation
import MisalignIO

/// One training setting (`SettingKey` of `TrainingOptions`): its name is the `misalign train`
/// flag without `--` and the name errors and fingerprints use; its YAML key is its key in an
/// experiment's `training:` section. `TrainingSettingKey.all` is the table every source goes
/// through: the flags, a JSON config (keys are the names or aliases, `_` or `-`) and the YAML
/// section (the same, written with `_`).
public typealias TrainingSettingKey = SettingKey<TrainingOptions>

extension TrainingOptions: SettingGroup {
    public static var section: String { "training" }
    public static var keys: [TrainingSettingKey] { TrainingSettingKey.all }

    /// The LoRA setting each LoRA key sets, which `--init-adapter` checks when given explicitly.
    static let loraSettings: [String: LoRASetting] = [
        "rank": .rank, "alpha": .alpha, "rslora": .rslora, "targets": .targets, "layers": .layers, "dropout": .dropout,
    ]

    /// A LoRA setting given is marked explicit (`TrainingSettings.explicitLoRA`).
    public mutating func didApply(given: Set<String>) {
        for name in given { if let l = Self.loraSettings[name] { settings.explicitLoRA.insert(l) } }
    }
}

extension SettingKey where Options == TrainingOptions {
    /// The LoRA setting it sets, which `--init-adapter` checks when given explicitly.
    public var lora: LoRASetting? { TrainingOptions.loraSettings[name] }

    /// The key a source spelling names (`warmup_steps`, `learning-rate`, `lr`), in `source`.
    public static func named(_ spelling: String, in source: SettingSource? = nil) -> TrainingSettingKey? {
        TrainingOptions.key(named: spelling, in: source)
    }

    /// The key by its name (`lr`, `save-every`).
    public static func setting(_ name: String) -> TrainingSettingKey? { all.first { $0.name == name } }
}
