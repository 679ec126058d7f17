import Foundation
import MisalignIO

/// Fingerprints of what a run reads, by content, for the run store's config check: a dataset
/// by the SHA-256 of its bytes (and its line count, for the message), the model by its
/// `config.json`, and each weights file by its size and a hash of its safetensors header (names,
/// dtypes, shapes, offsets) and of 8 blocks of 64 KiB spread over its data, so a 15 GB model is
/// fingerprinted in milliseconds; the tokenizer by its `tokenizer_config.json` and the same
/// sampled hash of `tokenizer.json`. Paths and modification times are left out: a moved or
/// copied model folder is the same model.
enum ContentFingerprint {
    static let absent = "absent"

    /// `sha256:<16 hex> lines:<N>`.
    static func dataset(_ url: URL) throws(PipelineError) -> String {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .missingInput(key: "datasets", path: url.path, reason: "cannot read the file")
        }
        let lines = data.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } + (data.last.map { $0 == 0x0A ? 0 : 1 } ?? 0)
        return "sha256:\(SHA256.hex(bytes: Array(data)).prefix(16)) lines:\(lines)"
    }

    /// The line count in a `dataset` fingerprint.
    static func lines(_ fingerprint: String) -> String? {
        fingerprint.split(separator: " ").first { $0.hasPrefix("lines:") }.map { String($0.dropFirst(6)) }
    }

    /// `model.config`, `model.weights` and `model.tokenizer` fields.
    static func model(_ model: URL, tokenizer: URL) -> [(String, String)] {
        let fm = FileManager.default
        let weights = ((try? fm.contentsOfDirectory(atPath: model.path)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        let tok = [whole(tokenizer.appendingPathComponent("tokenizer_config.json")),
                   sampled(tokenizer.appendingPathComponent("tokenizer.json"), header: false)]
        return [("model.config", whole(model.appendingPathComponent("config.json"))),
                ("model.weights", weights.isEmpty ? absent : weights.map { "\($0):\(sampled(model.appendingPathComponent($0), header: true))" }
                    .joined(separator: " ")),
                ("model.tokenizer", tok.joined(separator: " "))]
    }

    /// SHA-256 prefix of a small file's bytes, or `absent`.
    static func whole(_ url: URL) -> String {
        guard let data = FileManager.default.contents(atPath: url.path) else { return absent }
        return String(SHA256.hex(bytes: Array(data)).prefix(16))
    }

    /// `<size>b/<16 hex>`: the size, and a hash of the safetensors header (when `header`) and
    /// of 8 blocks of 64 KiB spread evenly over the file; `absent` when it cannot be read.
    static func sampled(_ url: URL, header: Bool) -> String {
        guard let h = FileHandle(forReadingAtPath: url.path) else { return absent }
        defer { try? h.close() }
        guard let size = try? h.seekToEnd() else { return absent }
        var bytes: [UInt8] = []
        func read(_ offset: UInt64, _ count: Int) {
            guard offset < size, (try? h.seek(toOffset: offset)) != nil, let d = try? h.read(upToCount: count) else { return }
            bytes += d
        }
        if header, size >= 8 {
            read(0, 8)
            let n = bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            if n <= 100 << 20 { read(8, Int(n)) }
        }
        let block = 64 << 10
        for i in 0..<8 {
            let offset = size > UInt64(block) ? (size - UInt64(block)) * UInt64(i) / 7 : 0
            read(offset, block)
            if size <= UInt64(block) { break }
        }
        return "\(size)b/\(SHA256.hex(bytes: bytes).prefix(16))"
    }

    /// What changed in `field`, readably: a dataset's line counts, the weights files that
    /// differ, else the old and new values.
    static func change(_ field: String, old: String, new: String) -> String {
        if field.hasPrefix("datasets.") {
            let counts = lines(old).flatMap { o in lines(new).map { "\(o) -> \($0) lines" } }
            return "\(field): the file's content changed" + (counts.map { " (\($0))" } ?? "")
        }
        if field == "model.weights" {
            func files(_ s: String) -> [String: String] {
                Dictionary(s.split(separator: " ").compactMap { p -> (String, String)? in
                    let parts = p.split(separator: ":", maxSplits: 1)
                    return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
                }, uniquingKeysWith: { a, _ in a })
            }
            let a = files(old), b = files(new)
            var parts: [String] = []
            for name in Set(a.keys).union(b.keys).sorted() where a[name] != b[name] {
                parts.append(a[name] == nil ? "\(name) was added" : b[name] == nil ? "\(name) is gone" : "\(name) changed")
            }
            return "model.weights: the model's weights changed (\(parts.isEmpty ? "no weights files now" : parts.joined(separator: ", ")))"
        }
        if field == "model.config" { return "model.config: the model's config.json changed" }
        if field == "model.tokenizer" { return "model.tokenizer: the tokenizer files changed" }
        return "\(field) was \(old), is now \(new)"
    }
}
