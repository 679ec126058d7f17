import Foundation

/// The LoRA settings a run can take from a starting adapter, under their flag names.
public enum LoRASetting: String, CaseIterable, Sendable {
    case rank, alpha, rslora, targets, layers, dropout

    /// The adapter_config.json field this setting is read from.
    public var peftField: String {
        switch self {
        case .rank: return "r"
        case .alpha: return "lora_alpha"
        case .rslora: return "use_rslora"
        case .targets: return "target_modules"
        case .layers: return "layers_to_transform"
        case .dropout: return "lora_dropout"
        }
    }
}

extension TrainingSettings {
    /// Starts from `adapter` (`--init-adapter`): its own configuration rules. Each LoRA setting
    /// not given explicitly (`explicitLoRA`) takes the adapter's value; one given explicitly
    /// must agree with it, or this throws naming both values. `layerCount` is the model's, to
    /// compare "every layer" with a list of all of them.
    public mutating func adopt(_ adapter: LoRAAdapter, layerCount: Int) throws {
        let theirs = adapter.config
        let source = adapter.path.map { ($0 as NSString).appendingPathComponent("adapter_config.json") } ?? "the starting adapter's config"
        func layerSet(_ l: [Int]?) -> Set<Int> { Set(l ?? Array(0..<layerCount)) }
        func show(_ l: [Int]?) -> String { l.map { $0.sorted().map(String.init).joined(separator: ",") } ?? "all" }
        func show(_ t: [LoRAModule]) -> String { t.sorted().map(\.rawValue).joined(separator: ",") }
        let all: [(LoRASetting, String, String, Bool)] = [
            (.rank, String(lora.rank), String(theirs.rank), lora.rank != theirs.rank),
            (.alpha, Self.number(lora.alpha), Self.number(theirs.alpha), lora.alpha != theirs.alpha),
            (.rslora, String(lora.useRSLoRA), String(theirs.useRSLoRA), lora.useRSLoRA != theirs.useRSLoRA),
            (.targets, show(lora.targets), show(theirs.targets), Set(lora.targets) != Set(theirs.targets)),
            (.layers, show(lora.layers), show(theirs.layers), layerSet(lora.layers) != layerSet(theirs.layers)),
            (.dropout, Self.number(lora.dropout), Self.number(theirs.dropout), lora.dropout != theirs.dropout),
        ]
        if let (setting, ours, adapters, _) = all.first(where: { $0.3 && explicitLoRA.contains($0.0) }) {
            throw TrainingError.invalidSetting(
                name: setting.rawValue,
                detail: "is \(ours), but the initial adapter (initAdapter) has \(setting.peftField) \(adapters) (\(source)); "
                    + "the adapter's configuration rules: drop `\(setting.rawValue)` (or its config-file key) or give \(adapters)")
        }
        lora = theirs
    }

    /// A number as a flag would take it: `8` rather than `8.0`.
    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
