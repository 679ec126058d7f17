import Foundation

/// A setting that differs between a checkpoint and the run resuming from it, under its name.
public struct SettingChange: Equatable, Sendable, CustomStringConvertible {
    public let name: String
    /// The value the checkpoint was written with, and this run's.
    public let checkpoint: String
    public let now: String
    /// As `misalign run` words a changed field: `lr was 0.01, is now 0.005`.
    public var description: String { "\(name) was \(checkpoint), is now \(now)" }
}

extension TrainingSettings {
    /// Everything that must stay the same for a checkpoint to be resumed by this run, as
    /// (setting name, value) pairs: every setting of `TrainingSettingKey.all` that changes the
    /// weights (the LoRA shape, the optimizer and schedule, batching, seed, length, holdout,
    /// adapter dtype), then the data (`data`: the examples trained on; `data-digest`: their
    /// tokens, when given). A setting whose value is its `omittedValue` is left out, so records
    /// written before it existed keep matching.
    func resumeSettings(dataCount: Int, dataDigest: String? = nil) -> [(String, String)] {
        let o = TrainingOptions(settings: self)
        var out: [(String, String)] = []
        for key in TrainingSettingKey.all where key.effect == .weights {
            let v = key.record(o)
            if v != key.omittedValue { out.append((key.name, v)) }
        }
        out.append(("data", "\(dataCount) examples"))
        if let dataDigest { out.append(("data-digest", dataDigest)) }
        return out
    }

    static let fingerprintVersion = "v2"

    /// The resume settings as one line for `trainer_state.json`: `v2; rank=32; alpha=64; ...`.
    func fingerprint(dataCount: Int, dataDigest: String? = nil) -> String {
        ([Self.fingerprintVersion] + resumeSettings(dataCount: dataCount, dataDigest: dataDigest).map { "\($0.0)=\($0.1)" })
            .joined(separator: "; ")
    }

    /// A digest of the examples' tokens and loss masks, in order (FNV-1a, 64 bits): an edited
    /// data file, another tokenizer or truncation gives another.
    static func dataDigest(_ examples: [TrainingExample]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ x: UInt64) { for i in 0..<8 { h = (h ^ ((x >> (8 * UInt64(i))) & 0xff)) &* 0x100_0000_01b3 } }
        for e in examples {
            mix(UInt64(e.ids.count))
            for (id, m) in zip(e.ids, e.mask) { mix(UInt64(id) << 1 | (m ? 1 : 0)) }
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
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

    /// How this run's settings differ from those `recorded` in a checkpoint's fingerprint, each
    /// compared by meaning (`TrainingSettingKey.sameRecord`): the changed settings, and the ones
    /// the checkpoint did not record (written by an earlier version). Nil when `recorded`
    /// cannot be read.
    func compare(toFingerprint recorded: String, dataCount: Int, dataDigest: String? = nil) -> (changes: [SettingChange], unrecorded: [String])? {
        guard let old = Self.parseFingerprint(recorded) else { return nil }
        let o = TrainingOptions(settings: self)
        // Every weight setting, those at their omitted value included (a checkpoint may record another).
        var current: [(TrainingSettingKey?, String, String)] = TrainingSettingKey.all.filter { $0.effect == .weights }.map { ($0, $0.name, $0.record(o)) }
        current.append((nil, "data", "\(dataCount) examples"))
        if let dataDigest { current.append((nil, "data-digest", dataDigest)) }
        var changes: [SettingChange] = [], unrecorded: [String] = []
        for (key, name, value) in current {
            guard let was = old[name] ?? key?.omittedValue else { unrecorded.append(name); continue }
            if !(key?.sameRecord(was, value) ?? (was == value)) { changes.append(SettingChange(name: name, checkpoint: was, now: value)) }
        }
        return (changes, unrecorded)
    }
}
