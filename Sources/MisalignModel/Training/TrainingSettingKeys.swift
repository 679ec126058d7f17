import Foundation
import MisalignIO

extension SettingKey where Options == TrainingOptions {
    /// Every training setting, in the order fingerprints record them and validation checks them.
    public static var all: [TrainingSettingKey] {
        let b = TrainingSettings.Bounds.self
        return [
            int("rank", \.settings.lora.rank, 1...b.rank, aliases: ["r"]),
            TrainingSettingKey(
                name: "alpha", aliases: ["lora-alpha"], expected: "a number > 0", effect: .weights,
                read: { o, e throws(SettingProblem) in o.settings.lora.alpha = try number(e) },
                check: { let a = $0.settings.lora.alpha
                    return !(a > 0 && a.isFinite) ? "is \(a); must be > 0" : a > b.alpha ? "is \(a); must be <= \(b.alpha)" : nil },
                record: { TrainingSettings.number($0.settings.lora.alpha) }),
            bool("rslora", \.settings.lora.useRSLoRA, aliases: ["use-rslora"]),
            TrainingSettingKey(
                name: "targets", aliases: ["target-modules"], expected: "all or a list of module names such as q_proj,v_proj",
                effect: .weights, isSet: true,
                read: { o, e throws(SettingProblem) in
                    var mods: [LoRAModule] = []
                    for item in e.value.items {
                        guard case .text(let s) = item else { throw SettingProblem(detail: "expected module names, found \(item.shown)") }
                        if s == "all" { mods += LoRAModule.allCases; continue }
                        guard let m = LoRAModule(rawValue: s) ?? LoRAModule(rawValue: s + "_proj") else {
                            throw SettingProblem(detail: "unknown module \"\(s)\"; use all or \(LoRAModule.allCases.map(\.rawValue).joined(separator: ", "))")
                        }
                        mods.append(m)
                    }
                    var seen = Set<LoRAModule>()
                    o.settings.lora.targets = mods.filter { seen.insert($0).inserted }
                },
                check: { $0.settings.lora.targets.isEmpty ? "names no module; use all or a list such as q_proj,v_proj" : nil },
                record: { $0.settings.lora.targets.sorted().map(\.rawValue).joined(separator: ",") }),
            TrainingSettingKey(
                name: "layers", expected: "all or a list of layer indices", effect: .weights, isSet: true,
                read: { o, e throws(SettingProblem) in
                    if e.value == .null || e.value == .text("all") { o.settings.lora.layers = nil; return }
                    o.settings.lora.layers = try e.value.items.map { item throws(SettingProblem) in
                        if let i = item.intValue { return i }
                        if case .text(let s) = item, let i = Int(s) { return i }
                        throw SettingProblem(detail: "lists \(item.shown), not a layer index; use all or a list of layer indices")
                    }
                },
                check: { o in
                    guard let l = o.settings.lora.layers else { return nil }
                    if l.isEmpty { return "is empty; use all or a list of layer indices" }
                    if let n = l.first(where: { $0 < 0 }) { return "lists \(n); layer indices are >= 0" }
                    if let n = l.first(where: { $0 > b.layer }) { return "lists \(n); layer indices are <= \(b.layer)" }
                    return nil
                },
                record: { $0.settings.lora.layers.map { $0.sorted().map(String.init).joined(separator: ",") } ?? "all" }),
            double("dropout", \.settings.lora.dropout, aliases: ["lora-dropout"], in: 0...1, upperOpen: true),
            TrainingSettingKey(
                name: "lr", aliases: ["learning-rate"], expected: "a number", effect: .weights,
                read: { o, e throws(SettingProblem) in o.settings.learningRate = try number(e) },
                check: { let lr = $0.settings.learningRate
                    if !(lr >= 0 && lr.isFinite) { return "is \(lr); must be a non-negative number" }
                    return lr > b.learningRate ? "is \(lr); above \(b.learningRate) training only diverges (LoRA uses 1e-5 to 1e-3)" : nil },
                record: { String($0.settings.learningRate) }),
            choice("schedule", \.settings.schedule, LRSchedule.allCases.map { ($0.rawValue, $0) }, show: \.rawValue),
            int("warmup-steps", \.settings.warmupSteps, 0...b.steps),
            double("weight-decay", \.settings.weightDecay, in: 0...b.weightDecay),
            double("max-grad-norm", \.settings.maxGradNorm, in: 0...b.maxGradNorm, note: " (0 turns clipping off)"),
            int("batch-size", \.settings.batchSize, 1...b.batchSize),
            int("grad-accum", \.settings.gradientAccumulation, 1...b.batchSize, aliases: ["gradient-accumulation"]),
            int("epochs", \.settings.epochs, 1...b.epochs),
            TrainingSettingKey(
                name: "max-steps", expected: "an integer (or null: the epochs decide)", effect: .weights,
                read: { o, e throws(SettingProblem) in o.settings.maxSteps = e.value == .null ? nil : try integer(e, max: b.steps) },
                check: { $0.settings.maxSteps.flatMap { inRange($0, 1...b.steps) } },
                record: { $0.settings.maxSteps.map(String.init) ?? "none" }),
            int("max-length", \.settings.maxLength, 2...b.maxLength),
            seedSetting("seed", \.settings.seed, effect: .weights, sources: [.flags, .json]),
            choice("adapter-dtype", \.settings.adapterDType, [("f32", .f32), ("float32", .f32), ("bf16", .bf16), ("bfloat16", .bf16)],
                   show: { $0 == .bf16 ? "bf16" : "f32" }, allowed: "f32 or bf16",
                   check: { $0 == .f32 || $0 == .bf16 }),
            // Recorded only when bf16, so runs trained before the setting existed (f32) resume.
            choice("precision", \.settings.precision, [("f32", .f32), ("float32", .f32), ("bf16", .bf16), ("bfloat16", .bf16)],
                   show: \.rawValue, allowed: "f32 or bf16", omittedValue: "f32"),
            TrainingSettingKey(
                name: "holdout", expected: "a fraction in [0, 1)", effect: .weights, omittedValue: "0",
                read: { o, e throws(SettingProblem) in o.settings.holdout = try number(e) },
                check: { o in
                    do { try HoldoutSplit.check(o.settings.holdout); return nil } catch {
                        if case .invalidSetting(_, let d) = error as? TrainingError { return d }
                        return "\(error)"
                    }
                },
                record: { $0.settings.holdout > 0 ? String($0.settings.holdout) : "0" }),
            int("save-every", \.settings.saveEvery, 0...b.steps, yaml: "checkpoint_every",
                note: " (0 saves only at the end)", effect: .outputs),
            int("holdout-every", \.settings.holdoutEvery, 1...b.steps, note: " (1: every checkpoint)", effect: .outputs),
            bool("skip-invalid", \.skipInvalid, effect: .outputs),
            bool("keep-optimizer-states", \.settings.keepAllOptimizerStates, effect: .none, sources: [.flags, .json]),
            bool("gradient-checkpointing", \.settings.recompute, aliases: ["recompute"], effect: .none),
            int("threads", \.threads, 0...b.threads, note: " (0: every core)", effect: .none),
        ]
    }
}

// The kinds of value most training settings are (`SettingKey`'s kinds, changing the weights
// unless said otherwise).
extension SettingKey where Options == TrainingOptions {
    static func int(_ name: String, _ kp: WritableKeyPath<TrainingOptions, Int>, _ range: ClosedRange<Int>, yaml: String? = nil,
                    aliases: [String] = [], note: String = "", effect: SettingEffect = .weights) -> TrainingSettingKey {
        intSetting(name, kp, range, yaml: yaml, aliases: aliases, note: note, effect: effect)
    }

    static func double(_ name: String, _ kp: WritableKeyPath<TrainingOptions, Double>, aliases: [String] = [], in range: ClosedRange<Double>,
                       upperOpen: Bool = false, note: String = "") -> TrainingSettingKey {
        // LoRA numbers are recorded as the adapter config writes them (`64`, not `64.0`).
        doubleSetting(name, kp, aliases: aliases, in: range, upperOpen: upperOpen, note: note, effect: .weights,
                      compact: TrainingOptions.loraSettings[name] != nil)
    }

    static func bool(_ name: String, _ kp: WritableKeyPath<TrainingOptions, Bool>, aliases: [String] = [], effect: SettingEffect = .weights,
                     sources: Set<SettingSource> = [.flags, .json, .yaml]) -> TrainingSettingKey {
        boolSetting(name, kp, aliases: aliases, effect: effect, sources: sources)
    }

    static func choice<T: Equatable>(_ name: String, _ kp: WritableKeyPath<TrainingOptions, T>, _ names: [(String, T)],
                                     show: @escaping (T) -> String, allowed: String? = nil, omittedValue: String? = nil,
                                     check: @escaping (T) -> Bool = { _ in true }) -> TrainingSettingKey {
        choiceSetting(name, kp, names, show: show, allowed: allowed, effect: .weights, omittedValue: omittedValue, check: check)
    }
}
