import Foundation
import MisalignIO

/// Reading a PEFT adapter folder, checking that `adapter_config.json` and the tensors agree.
extension LoRAAdapter {
    /// Reads a PEFT adapter folder (`adapter_config.json` + `adapter_model.safetensors`).
    public convenience init(directory url: URL) throws {
        let configURL = url.appendingPathComponent("adapter_config.json")
        let weightsURL = url.appendingPathComponent("adapter_model.safetensors")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw LoRAError.missingFile(path: configURL.path)
        }
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            throw LoRAError.missingFile(path: weightsURL.path)
        }
        let config = try Self.decodeConfig(try Data(contentsOf: configURL), file: configURL.path)
        let file = try SafeTensorsFile(url: weightsURL)
        let pairs = try Self.readPairs(file, path: weightsURL.path)
        try Self.check(pairs, against: config, configFile: configURL.path, weightsFile: weightsURL.path)
        self.init(config: config, pairs: pairs, path: url.path)
    }

    /// The A/B pairs of a PEFT `adapter_model.safetensors`, each A with its B and of shapes that multiply.
    static func readPairs(_ file: SafeTensorsFile, path: String) throws -> [LoRAKey: Pair] {
        var pairs: [LoRAKey: Pair] = [:]
        var seen = Set<String>()
        for info in file.tensorInfos {
            guard let (key, isA) = Self.parseKey(info.name) else {
                throw LoRAError.unexpectedTensor(file: path, name: info.name)
            }
            if !isA { continue }
            // B under the same spelling as A (`lora_A.weight` or `lora_A.default.weight`).
            let bName = info.name.replacingOccurrences(of: ".lora_A.", with: ".lora_B.")
            guard file.contains(bName) else { throw LoRAError.unpairedTensor(file: path, name: info.name) }
            guard pairs[key] == nil else { throw LoRAError.duplicateTensor(file: path, name: key.peftPrefix) }
            let a = try file.tensor(named: info.name).floatBuffer()
            let b = try file.tensor(named: bName).floatBuffer()
            guard a.shape.count == 2, b.shape.count == 2, b.shape[1] == a.shape[0] else {
                throw LoRAError.shapeMismatch(file: path, name: key.peftPrefix, a: a.shape, b: b.shape)
            }
            pairs[key] = Pair(a: a, b: b)
            seen.insert(info.name); seen.insert(bName)
        }
        for info in file.tensorInfos where !seen.contains(info.name) {
            throw LoRAError.unpairedTensor(file: path, name: info.name)
        }
        if pairs.isEmpty { throw LoRAError.noTensors(file: path) }
        return pairs
    }

    /// The tensors must be the ones the config describes: rank `r`, and only modules of
    /// `target_modules` in layers of `layers_to_transform`.
    static func check(_ pairs: [LoRAKey: Pair], against config: LoRAConfig, configFile: String, weightsFile: String) throws {
        for key in pairs.keys.sorted() {
            let p = pairs[key]!
            if p.rank != config.rank {
                throw LoRAError.invalidConfig(file: configFile, field: "r", detail: "is \(config.rank), but \(weightsFile) holds rank-\(p.rank) matrices (\(key.peftPrefix): lora_A \(p.a.shape)); the config does not belong to these weights")
            }
            if !config.targets.contains(key.module) {
                throw LoRAError.invalidConfig(file: configFile, field: "target_modules", detail: "lists \(config.targets.map(\.rawValue)), but \(weightsFile) holds \(key.peftPrefix); the config does not belong to these weights")
            }
            if let layers = config.layers, !layers.contains(key.layer) {
                throw LoRAError.invalidConfig(file: configFile, field: "layers_to_transform", detail: "lists \(layers), but \(weightsFile) holds \(key.peftPrefix) (layer \(key.layer)); the config does not belong to these weights")
            }
        }
    }

    /// `base_model.model.model.layers.3.mlp.down_proj.lora_A.weight` -> (layer 3, down, A).
    /// Also accepts the `.lora_A.default.weight` form some PEFT versions save.
    static func parseKey(_ name: String) -> (LoRAKey, Bool)? {
        let parts = name.split(separator: ".").map(String.init)
        guard let li = parts.firstIndex(of: "layers"), li + 1 < parts.count, let layer = Int(parts[li + 1]) else { return nil }
        guard let mi = parts.firstIndex(where: { LoRAModule(rawValue: $0) != nil }), mi + 1 < parts.count,
              let module = LoRAModule(rawValue: parts[mi]) else { return nil }
        let which = parts[mi + 1]
        guard which == "lora_A" || which == "lora_B", parts.last == "weight" else { return nil }
        return (LoRAKey(layer: layer, module: module), which == "lora_A")
    }

    /// The modules a string `target_modules` names: PEFT's "all-linear" (every projection of
    /// the decoder layers), or a regular expression PEFT matches against whole module names
    /// (`model.layers.0.self_attn.q_proj`); failing that, the modules whose name it mentions.
    static func modules(matching pattern: String) -> [LoRAModule] {
        if pattern == "all-linear" { return LoRAModule.allCases }
        if let re = try? NSRegularExpression(pattern: "^(?:\(pattern))$") {
            let hits = LoRAModule.allCases.filter { m in
                let name = "model.layers.0.\(m.path)"
                return re.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
            }
            if !hits.isEmpty { return hits }
        }
        return LoRAModule.allCases.filter { pattern.contains($0.rawValue) }
    }

    static func decodeConfig(_ data: Data, file: String) throws -> LoRAConfig {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch { throw LoRAError.invalidConfig(file: file, field: "(file)", detail: error.description) }
        guard let o = root.objectValue else { throw LoRAError.invalidConfig(file: file, field: "(file)", detail: "is not a JSON object") }
        let r = ConfigReader(obj: o, file: file)
        func bad(_ field: String, _ detail: String) -> LoRAError { .invalidConfig(file: file, field: field, detail: detail) }
        if let t = try r.string("peft_type"), t != "LORA" { throw bad("peft_type", "is \"\(t)\"; only LORA adapters are supported") }
        guard let rank = try r.int("r"), rank > 0 else { throw bad("r", "must be a positive integer") }
        let alpha = try r.double("lora_alpha") ?? 8
        guard alpha.isFinite, alpha > 0 else { throw bad("lora_alpha", "is \(alpha); it must be a positive number (the adapter's scale is lora_alpha / r)") }
        let dropout = try r.double("lora_dropout") ?? 0
        guard dropout >= 0, dropout < 1 else { throw bad("lora_dropout", "is \(dropout); it must be in [0, 1)") }
        if try r.bool("use_dora") == true { throw bad("use_dora", "DoRA adapters are not supported") }
        if try r.bool("fan_in_fan_out") == true { throw bad("fan_in_fan_out", "is true; Qwen2 linear layers are not fan-in-fan-out") }
        if let bias = try r.string("bias"), bias != "none" { throw bad("bias", "is \"\(bias)\"; only \"none\" is supported") }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let p = o[key]?.objectValue, p.count > 0 { throw bad(key, "per-module ranks or alphas are not supported") }
        }
        if let m = o["modules_to_save"], let a = m.arrayValue, !a.isEmpty { throw bad("modules_to_save", "fully trained extra modules are not supported") }
        var targets: [LoRAModule] = []
        if let t = o["target_modules"] {
            if let list = t.arrayValue {
                for item in list {
                    guard let s = item.stringValue, let m = LoRAModule(rawValue: s) else {
                        throw bad("target_modules", "names \(item.serialized()), not one of \(LoRAModule.allCases.map(\.rawValue))")
                    }
                    targets.append(m)
                }
            } else if let s = t.stringValue {
                targets = Self.modules(matching: s)
            } else if !t.isNull {
                throw bad("target_modules", "is \(t.serialized()), not a list of module names")
            } else {
                targets = [.q, .v]  // PEFT's default for Qwen2
            }
        } else {
            targets = [.q, .v]
        }
        if targets.isEmpty { throw bad("target_modules", "names none of \(LoRAModule.allCases.map(\.rawValue))") }
        var layers: [Int]? = nil
        if let l = o["layers_to_transform"], !l.isNull {
            if let one = l.intValue { layers = [one] } else if let list = l.arrayValue {
                layers = try list.map {
                    guard let v = $0.intValue, v >= 0 else { throw bad("layers_to_transform", "holds \($0.serialized()); layer indices are integers >= 0") }
                    return v
                }
            } else { throw bad("layers_to_transform", "is not an integer or a list") }
            if layers?.isEmpty == true { throw bad("layers_to_transform", "is an empty list; use null for every layer") }
        }
        return LoRAConfig(rank: rank, alpha: alpha, useRSLoRA: try r.bool("use_rslora") ?? false,
                          targets: Array(Set(targets)).sorted(), layers: layers.map { Array(Set($0)).sorted() }, dropout: dropout)
    }
}
