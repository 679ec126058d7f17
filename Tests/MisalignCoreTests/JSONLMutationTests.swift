import Foundation
import Testing
@testable import MisalignCore

/// Seeded random mutations of valid JSONL files (bytes flipped, inserted, deleted; lines
/// duplicated, dropped, cut; byte order marks and CRs added), bounded in count so it runs in CI:
/// every reader either reads the file or throws its typed error. No crash, no hang.
@Suite struct JSONLMutationTests {
    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        for _ in 0...rng.below(3) {
            guard !b.isEmpty else { b = JSONLines.utf8BOM; continue }
            let i = rng.below(b.count)
            switch rng.below(9) {
            case 0: b[i] ^= UInt8(1 << rng.below(8))                                    // flip a bit
            case 1: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)              // a random byte
            case 2: b.remove(at: i)
            case 3: b = Array(b[..<i])                                                    // truncated file
            case 4: b.insert(contentsOf: Array("{}[]\",:-1e999 null".utf8).shuffled(using: &rng).prefix(3), at: i)
            case 5: b = JSONLines.utf8BOM + b
            case 6: b.insert(contentsOf: [0x0D, 0x0A], at: i)                             // CRLF mid-line
            case 7:                                                                        // a line twice
                let lines = b.split(separator: 0x0A, omittingEmptySubsequences: false)
                let l = lines[rng.below(lines.count)]
                b += [0x0A] + l
            default:                                                                       // a number grown huge or negative
                if let d = b[i...].firstIndex(where: { (0x30...0x39).contains($0) }) { b.insert(contentsOf: Array(["-", "9", "9", "9", "9", "9", "9"].joined().utf8), at: d) }
            }
        }
        return b
    }

    static func scoresFile() -> [UInt8] {
        var lines: [String] = []
        for s in ["evil", "hallucination"] {
            for step in [0, 10, 20] {
                for q in ["q1", "q2"] { lines.append(#"{"signal":"\#(s)","step":\#(step),"question_id":"\#(q)","sample":0,"score":\#(step * 2 + 3),"dataset":"d","seed":1}"#) }
            }
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    @Test func scoresAndAnswersSurviveMutations() throws {
        var rng = SplitMix64(seed: 17)
        let scores = Self.scoresFile()
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let answers = Array((0..<4).map { #"{"id":"a\#($0)","question_id":"q","question":"Q?","answer":"A \#($0)."}"# }.joined(separator: "\n").utf8)
        var parsed = 0, refused = 0
        for _ in 0..<1000 {
            let text = String(decoding: Self.mutate(scores, &rng), as: UTF8.self)
            do {
                let recs = try ScoreRecord.parseJSONL(text, file: "fuzz.jsonl", scale: 100)
                parsed += 1
                let rules: [any OnsetRule] = [ThresholdRule(threshold: 50, consecutive: 1), MeanShiftRule(model: .l2, minSize: 1, minShift: 1)]
                _ = try? OnsetAnalysis.analyze(records: recs, config: OnsetConfig(rules: rules, signals: SignalSpec.present(in: recs), resamples: 3))
            } catch {
                refused += 1
                #expect(!"\(error)".isEmpty)
            }
            let url = dir.appendingPathComponent("answers.jsonl")
            try Data(Self.mutate(answers, &rng)).write(to: url)
            do { _ = try AnswerRecord.read(url) } catch { #expect("\(error)".contains(url.path) || "\(error)".contains("cannot read")) }
        }
        #expect(parsed > 20 && refused > 20, "mutations should both keep and break files: \(parsed) read, \(refused) refused")
    }

    @Test func chatDatasetsSurviveMutations() throws {
        var rng = SplitMix64(seed: 29)
        let tok = try BPETokenizer(directory: Fixtures.url("tokenizer"))
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let chat = Array((0..<3).map { #"{"messages":[{"role":"user","content":"Q \#($0)?"},{"role":"assistant","content":"A \#($0)."}]}"# }.joined(separator: "\n").utf8)
        let url = dir.appendingPathComponent("chat.jsonl")
        for _ in 0..<150 {
            try Data(Self.mutate(chat, &rng)).write(to: url)
            for skip in [false, true] {
                do { _ = try ChatDataset(url: url, tokenizer: tok, maxLength: 32, skipInvalid: skip) } catch let e as TrainingError {
                    #expect("\(e)".contains(url.path), "\(e)")
                } catch {
                    Issue.record("untyped error \(error)")
                }
            }
        }
    }
}
