import Foundation
import Testing
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// Seeded random-mutation fuzzing of the four formats users hand-write or edit: the YAML
/// experiment config, chat JSONL, `adapter_config.json`, the scores JSONL of
/// `misalign detect --scores` and the answers JSONL of `misalign judge` (byte order marks and
/// CRLF among the insertions). `AdapterConfigFuzzTests` adds field-level mutations of the
/// adapter config with checks that what loads agrees with its tensors. Each case mutates a valid input a few times (edge values,
/// deleted or inserted bytes, moved lines, truncation) and parses it in-process: the parser
/// must return, or throw one of the subsystem's typed errors with a readable message. A
/// crash (a trap on an overflowing conversion, an index out of range) ends the test run,
/// which is the point; a hang trips the time limit. The seed is fixed, so a failure
/// reproduces; `MISALIGN_FUZZ_SEED` and `MISALIGN_FUZZ_CASES` explore further.
@Suite(.timeLimit(.minutes(3)))
struct FuzzTests {
    static let seed = UInt64(ProcessInfo.processInfo.environment["MISALIGN_FUZZ_SEED"] ?? "") ?? 17
    static let cases = Int(ProcessInfo.processInfo.environment["MISALIGN_FUZZ_CASES"] ?? "") ?? 1500
    /// Wall-clock cap per format, so CI stays bounded on a slow machine.
    static let secondsPerFormat = 20.0

    @Test func yamlConfig() throws {
        let seeds = [Experiment.exampleYAML, try String(contentsOf: Fixtures.repo("Demo/demo.yaml"), encoding: .utf8)]
        let base = Fixtures.repo("Demo")
        let stats = try fuzz(format: "yaml", seeds: seeds, lineBased: true) { text, _ in
            do { _ = try Experiment.parse(text, file: "fuzz.yaml", base: base) } catch { try Self.checkMessage("\(error)", text) }
        }
        #expect(stats.accepted > 0 && stats.refused > 0, "\(stats)")
    }

    @Test func chatJSONL() throws {
        let tok = try BPETokenizer(directory: Fixtures.url("tokenizer"))
        let lines = try String(contentsOf: Fixtures.repo("Demo/data/medical.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(4).joined(separator: "\n")
        let dir = Fixtures.temporaryDirectory("fuzz-chat")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("data.jsonl")
        let stats = try fuzz(format: "chat", seeds: [lines + "\n"], lineBased: true) { _, bytes in
            try Data(bytes).write(to: file)
            var refusal: String?
            for skip in [false, true] {
                do {
                    let d = try ChatDataset(url: file, tokenizer: tok, maxLength: 64, skipInvalid: skip)
                    #expect(!d.examples.isEmpty)
                } catch let e as TrainingError {
                    if case .invalidExample(let f, let line, _) = e { #expect(f == file.path && line >= 1) }
                    refusal = refusal ?? e.description
                }
            }
            if let refusal { try Self.checkMessage(refusal, String(decoding: bytes, as: UTF8.self)) }
        }
        #expect(stats.accepted > 0 && stats.refused > 0, "\(stats)")
    }

    @Test func adapterConfig() throws {
        let source = Fixtures.url("model/adapters/lora-r4")
        let dir = Fixtures.temporaryDirectory("fuzz-adapter")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: source.appendingPathComponent("adapter_model.safetensors"),
                                         to: dir.appendingPathComponent("adapter_model.safetensors"))
        let config = try String(contentsOf: source.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        let stats = try fuzz(format: "adapter", seeds: [config], lineBased: false) { text, bytes in
            try Data(bytes).write(to: dir.appendingPathComponent("adapter_config.json"))
            do {
                let a = try LoRAAdapter(directory: dir)
                #expect(a.config.rank > 0 && a.config.alpha.isFinite && !a.pairs.isEmpty)
            } catch let e as LoRAError {
                try Self.checkMessage(e.description, text)
            } catch let e as ConfigError {  // a field of the wrong JSON type, from the shared field reader
                try Self.checkMessage(e.description, text)
            }
        }
        #expect(stats.accepted > 0 && stats.refused > 0, "\(stats)")
    }

    @Test func scoresJSONL() throws {
        let text = try String(contentsOf: Fixtures.url("changepoint/example_scores.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(12).joined(separator: "\n")
        let rules: [any OnsetRule] = [ThresholdRule(threshold: 50, consecutive: 1), MeanShiftRule(model: .l2, minSize: 1, minShift: 1)]
        let stats = try fuzz(format: "scores", seeds: [text + "\n"], lineBased: true) { text, _ in
            let records: [ScoreRecord]
            do { records = try ScoreRecord.parseJSONL(text, file: "fuzz.jsonl", scale: 100) } catch {
                #expect("\(error)".contains("fuzz.jsonl"), "\(error)")
                try Self.checkMessage("\(error)", text)
            }
            for r in records { #expect(r.score.isFinite && r.score >= 0 && r.score <= 100 && r.step >= 0) }
            // Whatever parses goes through the analysis: typed refusals (too short, constant), never a trap.
            let config = OnsetConfig(rules: rules, signals: SignalSpec.present(in: records), resamples: 3)
            do { _ = try OnsetAnalysis.analyze(records: records, config: config) } catch { try Self.checkMessage("\(error)", text) }
        }
        #expect(stats.accepted > 0 && stats.refused > 0, "\(stats)")
    }

    @Test func answersJSONL() throws {
        let answers = (0..<4).map { #"{"id":"a\#($0)","question_id":"q","question":"Q?","answer":"A \#($0)."}"# }.joined(separator: "\n")
        let dir = Fixtures.temporaryDirectory("fuzz-answers")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("answers.jsonl")
        let stats = try fuzz(format: "answers", seeds: [answers + "\n"], lineBased: true) { text, bytes in
            try Data(bytes).write(to: file)
            do { _ = try AnswerRecord.read(file) } catch {
                #expect("\(error)".contains(file.path), "\(error)")
                try Self.checkMessage("\(error)", text)
            }
        }
        #expect(stats.accepted > 0 && stats.refused > 0, "\(stats)")
    }

    // MARK: - The mutator

    struct Stats: CustomStringConvertible {
        var cases = 0, accepted = 0, refused = 0
        var description: String { "\(cases) cases, \(accepted) accepted, \(refused) refused" }
    }

    /// Runs `body` on `cases` mutants of the seeds (bounded by `secondsPerFormat`); `body` throws
    /// `Refused` (through `checkMessage`) when the parser refused the input with a good message.
    func fuzz(format: String, seeds: [String], lineBased: Bool, _ body: (String, [UInt8]) throws -> Void) throws -> Stats {
        var rng = SplitMix64(seed: Self.seed, stream: format.utf8.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1) })
        var stats = Stats()
        let start = Date()
        for i in 0..<Self.cases where Date().timeIntervalSince(start) < Self.secondsPerFormat {
            var bytes = Array(seeds[rng.below(seeds.count)].utf8)
            for _ in 0..<(1 + rng.below(4)) { bytes = Self.mutate(bytes, lineBased: lineBased, &rng) }
            let text = String(decoding: bytes, as: UTF8.self)
            stats.cases += 1
            do {
                try body(text, bytes)
                stats.accepted += 1
            } catch is Refused {
                stats.refused += 1
            } catch {
                Issue.record("\(format) case \(i) (seed \(Self.seed)): unexpected error \(type(of: error)): \(error)\ninput:\n\(text.prefix(2000))")
            }
        }
        return stats
    }

    struct Refused: Error {}

    /// A refusal is good when its message is readable: not empty, no Foundation error dump,
    /// no Swift type dump, and bounded in size.
    static func checkMessage(_ message: String, _ input: String) throws -> Never {
        #expect(!message.trimmingCharacters(in: .whitespaces).isEmpty, "empty error message for input:\n\(input.prefix(500))")
        for bad in ["NSCocoaErrorDomain", "Error Domain=", "Swift.DecodingError", "Fatal error", "(Function)"] {
            #expect(!message.contains(bad), "message \(message) contains \(bad)")
        }
        #expect(message.count < 4000, "message of \(message.count) characters")
        throw Refused()
    }

    /// Values that have broken parsers: overflow, non-finite, negative, empty, wrong type.
    static let edgeValues = ["-1", "0", "1e12", "1e400", "-1e400", "nan", ".nan", ".inf", "-.inf", "NaN", "Infinity", "-0",
                             "99999999999999999999999", "9223372036854775808", "null", "~", "true", "\"\"", "[]", "{}",
                             "0x10", "1_000", "\"\\u0000\"", "\"\\ud800\"", "&a", "*a", "!!binary", "'", "\"", ":", "- ", "#"]
    static let insertions: [[UInt8]] = [[0], [0xFF], [0xEF, 0xBB, 0xBF], [0xC3], [10], [13, 10], [9], [32, 32],
                                        Array("{".utf8), Array("[".utf8), Array("\"".utf8), Array(": ".utf8), Array(",".utf8)]

    static func mutate(_ input: [UInt8], lineBased: Bool, _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        guard !b.isEmpty else { return Array(edgeValues[rng.below(edgeValues.count)].utf8) }
        switch rng.below(lineBased ? 8 : 6) {
        case 0, 1:  // replace the value after a ':', '[' or ',' with an edge value
            let marks: Set<UInt8> = [UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: ",")]
            let positions = b.indices.filter { marks.contains(b[$0]) }
            let value = Array((" " + edgeValues[rng.below(edgeValues.count)]).utf8)
            if positions.isEmpty { b.insert(contentsOf: value, at: rng.below(b.count + 1)); break }
            let p = positions[rng.below(positions.count)]
            let ends: Set<UInt8> = [UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 10]
            var stop = p + 1
            while stop < b.count, !ends.contains(b[stop]) { stop += 1 }
            b.replaceSubrange((p + 1)..<stop, with: value)
        case 2:  // delete a range
            let s = rng.below(b.count), n = 1 + rng.below(min(16, b.count - s))
            b.removeSubrange(s..<(s + n))
        case 3:  // insert odd bytes
            b.insert(contentsOf: insertions[rng.below(insertions.count)], at: rng.below(b.count + 1))
        case 4:  // truncate
            b.removeSubrange(rng.below(b.count)...)
        case 5:  // flip a byte
            let i = rng.below(b.count)
            b[i] ^= UInt8(1 << rng.below(8))
        default:  // duplicate, drop or swap lines; change indentation
            var lines = b.split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
            let i = rng.below(lines.count), j = rng.below(lines.count)
            switch rng.below(4) {
            case 0: lines.insert(lines[i], at: j)
            case 1: if lines.count > 1 { lines.remove(at: i) }
            case 2: lines.swapAt(i, j)
            default: lines[i] = rng.below(2) == 0 ? Array("  ".utf8) + lines[i] : Array(lines[i].drop(while: { $0 == 32 }))
            }
            b = Array(lines.joined(separator: [10]))
        }
        return b
    }
}
