import Foundation
import MisalignIO

extension LoRAAdapter {
    /// The `adapter_config.json` PEFT writes for these settings; `PeftModel.from_pretrained`
    /// reads it (fields it does not list take PEFT's defaults).
    public static func peftConfigJSON(_ c: LoRAConfig, baseModel: String?) -> String {
        var o = JSONObject()
        o["alpha_pattern"] = .object(JSONObject())
        o["base_model_name_or_path"] = baseModel.map { .string($0) } ?? .null
        o["bias"] = .string("none")
        o["fan_in_fan_out"] = .bool(false)
        o["inference_mode"] = .bool(true)
        o["init_lora_weights"] = .bool(true)
        o["layers_pattern"] = .null
        o["layers_to_transform"] = c.layers.map { .array($0.sorted().map { .int(Int64($0)) }) } ?? .null
        o["lora_alpha"] = c.alpha == c.alpha.rounded() ? .int(Int64(c.alpha)) : .double(c.alpha)
        o["lora_dropout"] = .double(c.dropout)
        o["modules_to_save"] = .null
        o["peft_type"] = .string("LORA")
        o["r"] = .int(Int64(c.rank))
        o["rank_pattern"] = .object(JSONObject())
        o["revision"] = .null
        o["target_modules"] = .array(c.targets.sorted().map { .string($0.rawValue) })
        o["task_type"] = .string("CAUSAL_LM")
        o["use_dora"] = .bool(false)
        o["use_rslora"] = .bool(c.useRSLoRA)
        return JSONValue.object(o).serialized()
    }

    /// Writes a PEFT adapter folder (`adapter_model.safetensors` with PEFT's tensor names and
    /// `adapter_config.json`) into `directory`, which must exist. Each file is written atomically.
    public func save(to directory: URL, dtype: DType = .f32, baseModel: String? = nil) throws {
        var w = SafeTensorsWriter(metadata: ["format": "pt"])
        for key in keys {
            let p = pairs[key]!
            w.add("\(key.peftPrefix).lora_A.weight", floats: UnsafeBufferPointer(p.a.buffer), shape: p.a.shape, dtype: dtype)
            w.add("\(key.peftPrefix).lora_B.weight", floats: UnsafeBufferPointer(p.b.buffer), shape: p.b.shape, dtype: dtype)
        }
        try w.write(to: directory.appendingPathComponent("adapter_model.safetensors"))
        try AtomicFile.write(Data(Self.peftConfigJSON(config, baseModel: baseModel).utf8),
                             to: directory.appendingPathComponent("adapter_config.json"))
    }
}
