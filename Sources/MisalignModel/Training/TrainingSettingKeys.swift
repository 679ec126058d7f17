import Foundation

extension TrainingSettingKey {
    /// Every training setting, in the order fingerprints record them and validation checks them.
    public static var all: [TrainingSettingKey] {
        let b = TrainingSettings.Bounds.self
        return [
            int("rank", \.settings.lora.rank, 1...b.rank, aliases: ["r"], lora: .rank),
            TrainingSettingKey(
                name: "alpha", aliases: ["lora-alpha"], expected: "a number > 0", effect: .weights, lora: .alpha,
                read: { o, e throws(SettingProblem) in o.settings.lora.alpha = try number(e) },
                check: { let a = $0.settings.lora.alpha
                    return !(a > 0 && a.isFinite) ? "is \(a); must be > 0" : a > b.alpha ? "is \(a); must be <= \(b.alpha)" : nil },
                record: { TrainingSettings.number($0.settings.lora.alpha) }),
            bool("rslora", \.settings.lora.useRSLoRA, aliases: ["use-rslora"], lora: .rslora),
            TrainingSettingKey(
                name: "targets", aliases: ["target-modules"], expected: "all or a list of module names such as q_proj,v_proj",
                effect: .weights, lora: .targets, isSet: true,
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
                name: "layers", expected: "all or a list of layer indices", effect: .weights, lora: .layers, isSet: true,
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
            double("dropout", \.settings.lora.dropout, aliases: ["lora-dropout"], in: 0...1, upperOpen: true, lora: .dropout),
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
            TrainingSettingKey(
                name: "seed", expected: "a non-negative integer", effect: .weights, sources: [.flags, .json],
                read: { o, e throws(SettingProblem) in
                    if let i = e.value.intValue, i >= 0 { o.settings.seed = UInt64(i); return }
                    if case .text(let s) = e.value, let u = UInt64(s) { o.settings.seed = u; return }
                    throw SettingProblem(detail: "expected a non-negative integer, found \(e.shown)")
                },
                check: { _ in nil }, record: { String($0.settings.seed) }),
            choice("adapter-dtype", \.settings.adapterDType, [("f32", .f32), ("float32", .f32), ("bf16", .bf16), ("bfloat16", .bf16)],
                   show: { $0 == .bf16 ? "bf16" : "f32" }, allowed: "f32 or bf16",
                   check: { $0 == .f32 || $0 == .bf16 }),
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

// The kinds of value most settings are, each read and checked the same way everywhere.
extension TrainingSettingKey {
    init(name: String, yaml: String? = nil, aliases: [String] = [], expected: String, effect: SettingEffect,
         sources: Set<SettingSource> = [.flags, .json, .yaml], lora: LoRASetting? = nil, omittedValue: String? = nil, isSet: Bool = false,
         read: @escaping (inout TrainingOptions, SettingEntry) throws(SettingProblem) -> Void,
         check: @escaping (TrainingOptions) -> String?, record: @escaping (TrainingOptions) -> String) {
        self.name = name; yamlKey = yaml ?? name.replacingOccurrences(of: "-", with: "_"); self.aliases = aliases
        self.expected = expected; self.effect = effect; self.sources = sources; self.lora = lora
        self.omittedValue = omittedValue; self.isSet = isSet; self.read = read; self.check = check; self.record = record
    }

    static func int(_ name: String, _ kp: WritableKeyPath<TrainingOptions, Int>, _ range: ClosedRange<Int>, yaml: String? = nil,
                    aliases: [String] = [], note: String = "", effect: SettingEffect = .weights, lora: LoRASetting? = nil) -> TrainingSettingKey {
        TrainingSettingKey(name: name, yaml: yaml, aliases: aliases, expected: "an integer", effect: effect, lora: lora,
                           read: { o, e throws(SettingProblem) in o[keyPath: kp] = try integer(e, max: range.upperBound) },
                           check: { inRange($0[keyPath: kp], range, note: note) }, record: { String($0[keyPath: kp]) })
    }

    static func double(_ name: String, _ kp: WritableKeyPath<TrainingOptions, Double>, aliases: [String] = [], in range: ClosedRange<Double>,
                       upperOpen: Bool = false, note: String = "", lora: LoRASetting? = nil) -> TrainingSettingKey {
        let bounds = upperOpen ? "in [\(number(range.lowerBound)), \(number(range.upperBound)))" : nil
        return TrainingSettingKey(
            name: name, aliases: aliases, expected: "a number", effect: .weights, lora: lora,
            read: { o, e throws(SettingProblem) in o[keyPath: kp] = try number(e) },
            check: { o in
                let x = o[keyPath: kp]
                let fits = x.isFinite && x >= range.lowerBound && (upperOpen ? x < range.upperBound : x <= range.upperBound)
                if fits { return nil }
                if let bounds { return "is \(x); must be \(bounds)\(note)" }
                return x >= range.lowerBound && x.isFinite ? "is \(x); must be <= \(range.upperBound)" : "is \(x); must be >= \(number(range.lowerBound))\(note)"
            },
            record: { o in lora == nil ? String(o[keyPath: kp]) : TrainingSettings.number(o[keyPath: kp]) })
    }

    static func bool(_ name: String, _ kp: WritableKeyPath<TrainingOptions, Bool>, aliases: [String] = [], effect: SettingEffect = .weights,
                     sources: Set<SettingSource> = [.flags, .json, .yaml], lora: LoRASetting? = nil) -> TrainingSettingKey {
        TrainingSettingKey(name: name, aliases: aliases, expected: "true or false", effect: effect, sources: sources, lora: lora,
                           read: { o, e throws(SettingProblem) in
                               guard case .bool(let x) = e.value else { throw SettingProblem(detail: "expected true or false, found \(e.shown)") }
                               o[keyPath: kp] = x
                           },
                           check: { _ in nil }, record: { String($0[keyPath: kp]) })
    }

    static func choice<T: Equatable>(_ name: String, _ kp: WritableKeyPath<TrainingOptions, T>, _ names: [(String, T)],
                                     show: @escaping (T) -> String, allowed: String? = nil,
                                     check: @escaping (T) -> Bool = { _ in true }) -> TrainingSettingKey {
        let allowed = allowed ?? {
            let n = names.map(\.0)
            return n.dropLast().joined(separator: ", ") + " or " + n.last!
        }()
        return TrainingSettingKey(
            name: name, expected: allowed, effect: .weights,
            read: { o, e throws(SettingProblem) in
                guard case .text(let s) = e.value, let x = names.first(where: { $0.0 == s.lowercased() })?.1 else {
                    throw SettingProblem(detail: "expected \(allowed), found \(e.shown)")
                }
                o[keyPath: kp] = x
            },
            check: { check($0[keyPath: kp]) ? nil : "must be \(allowed)" }, record: { show($0[keyPath: kp]) })
    }

    /// An integer; a whole number past Int's range is refused with the bound.
    static func integer(_ e: SettingEntry, max: Int) throws(SettingProblem) -> Int {
        if let i = e.value.intValue { return i }
        if case .number(let d) = e.value, d.isFinite, d == d.rounded() { throw SettingProblem(detail: "is \(e.text); must be <= \(max)") }
        throw SettingProblem(detail: "expected an integer, found \(e.shown)")
    }

    /// A number; not-finite ones pass, for the check to refuse naming the range.
    static func number(_ e: SettingEntry) throws(SettingProblem) -> Double {
        if case .int(let i) = e.value { return Double(i) }
        if case .number(let d) = e.value { return d }
        throw SettingProblem(detail: "expected a number, found \(e.shown)")
    }

    static func inRange(_ x: Int, _ r: ClosedRange<Int>, note: String = "") -> String? {
        x < r.lowerBound ? "is \(x); must be >= \(r.lowerBound)\(note)" : x > r.upperBound ? "is \(x); must be <= \(r.upperBound)" : nil
    }

    static func number(_ d: Double) -> String { TrainingSettings.number(d) }
}
