import Foundation

/// A setting that differs between a checkpoint and the run resuming from it, under its flag name.
public struct SettingChange: Equatable, Sendable, CustomStringConvertible {
    public let name: String
    /// The value the checkpoint was written with, and this run's.
    public let checkpoint: String
    public let now: String
    public var description: String { "`\(name)` \(checkpoint) in the checkpoint, \(now) now" }
}

extension TrainingSettings {
    /// Everything that must stay the same for a checkpoint to be resumed by this run, as
    /// (flag name, value) pairs: the LoRA shape, the optimizer and schedule (the learning rate
    /// of every step follows from lr, schedule, warmup and the total step count), the data
    /// order and batching, and the adapter dtype of the checkpoints.
    func resumeSettings(dataCount: Int) -> [(String, String)] {
        let l = lora
        var out: [(String, String)] = [
            ("rank", String(l.rank)), ("alpha", Self.number(l.alpha)), ("rslora", String(l.useRSLoRA)),
            ("targets", l.targets.sorted().map(\.rawValue).joined(separator: ",")),
            ("layers", l.layers.map { $0.sorted().map(String.init).joined(separator: ",") } ?? "all"),
            ("dropout", Self.number(l.dropout)),
            ("lr", String(learningRate)), ("schedule", schedule.rawValue), ("warmup-steps", String(warmupSteps)),
            ("weight-decay", String(weightDecay)), ("max-grad-norm", String(maxGradNorm)),
            ("batch-size", String(batchSize)), ("grad-accum", String(gradientAccumulation)),
            ("epochs", String(epochs)), ("max-steps", maxSteps.map(String.init) ?? "none"),
            ("max-length", String(maxLength)), ("seed", String(seed)),
            ("adapter-dtype", adapterDType == .bf16 ? "bf16" : "f32"), ("data", "\(dataCount) examples"),
        ]
        if holdout > 0 { out.append(("holdout", String(holdout))) }
        return out
    }

    static let fingerprintVersion = "v2"

    /// The resume settings as one line for `trainer_state.json`: `v2; rank=32; alpha=64; ...`.
    func fingerprint(dataCount: Int) -> String {
        ([Self.fingerprintVersion] + resumeSettings(dataCount: dataCount).map { "\($0.0)=\($0.1)" }).joined(separator: "; ")
    }

    /// The settings a fingerprint records. Those of misalign before v2 held only the LoRA
    /// shape, batching, seed and data count (`r32 a64.0 rstrue t[...] l[] b2 ga8 len1024 seed0 n10`);
    /// they are read into the same names. Nil when the text is neither form.
    static func parseFingerprint(_ text: String) -> [String: String]? {
        let prefix = fingerprintVersion + "; "
        if text.hasPrefix(prefix) {
            var out: [String: String] = [:]
            for part in text.dropFirst(prefix.count).components(separatedBy: "; ") {
                guard let eq = part.firstIndex(of: "=") else { return nil }
                out[String(part[..<eq])] = String(part[part.index(after: eq)...])
            }
            return out
        }
        let pattern = #"^r(\d+) a(\S+) rs(true|false) t\[(.*)\] l\[(.*)\] b(\d+) ga(\d+) len(\d+) seed(\d+) n(\d+)$"#
        guard let re = try? NSRegularExpression(pattern: pattern),
              let m = re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)), m.numberOfRanges == 11 else { return nil }
        let g = (1...10).map { String(text[Range(m.range(at: $0), in: text)!]) }
        func list(_ s: String) -> String { s.replacingOccurrences(of: "\"", with: "").replacingOccurrences(of: " ", with: "") }
        return [
            "rank": g[0], "alpha": Double(g[1]).map(number) ?? g[1], "rslora": g[2], "targets": list(g[3]),
            "layers": g[4].isEmpty ? "all" : list(g[4]), "batch-size": g[5], "grad-accum": g[6], "max-length": g[7],
            "seed": g[8], "data": "\(g[9]) examples",
        ]
    }

    /// How this run's settings differ from those `recorded` in a checkpoint's fingerprint:
    /// the changed settings, and the ones the checkpoint did not record (written before v2).
    /// Nil when `recorded` cannot be read.
    func compare(toFingerprint recorded: String, dataCount: Int) -> (changes: [SettingChange], unrecorded: [String])? {
        guard let old = Self.parseFingerprint(recorded) else { return nil }
        var changes: [SettingChange] = [], unrecorded: [String] = []
        for (name, value) in resumeSettings(dataCount: dataCount) where name != "holdout" {
            guard let was = old[name] else { unrecorded.append(name); continue }
            if was != value { changes.append(SettingChange(name: name, checkpoint: was, now: value)) }
        }
        // Recorded only when set (absent: 0), so checkpoints written without one keep their fingerprint.
        let was = old["holdout"] ?? "0", now = holdout > 0 ? String(holdout) : "0"
        if was != now { changes.append(SettingChange(name: "holdout", checkpoint: was, now: now)) }
        return (changes, unrecorded)
    }
}
