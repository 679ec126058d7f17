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

/// A UTF-8 byte order mark opening a JSONL file (Notepad, PowerShell) is not part of the first
/// record: every JSONL reader goes through `JSONLines` and accepts it.
@Suite struct JSONLinesTests {
    static let bom = "\u{FEFF}"

    @Test func linesDropTheBOMSkipBlanksAndKeepEditorLineNumbers() {
        let text = Self.bom + "{\"a\":1}\r\n\r\n  \n{\"a\":2}\n"
        let fromText = JSONLines.lines(text)
        #expect(fromText.map(\.number) == [1, 4])
        #expect(fromText.map { String($0.text) } == ["{\"a\":1}", "{\"a\":2}"])
        let fromData = JSONLines.lines(Data(text.utf8))
        #expect(fromData.lines.map(\.number) == [1, 4] && fromData.total == 4)
        #expect(fromData.lines.map { try? JSONValue.parse($0.bytes) } == [.object(JSONObject([("a", .int(1))])), .object(JSONObject([("a", .int(2))]))])
        #expect(JSONLines.droppingBOM(Data(JSONLines.utf8BOM + [0x7B, 0x7D])) == Data([0x7B, 0x7D]))
        #expect(JSONLines.droppingBOM("x") == "x")
    }

    @Test func aChatDatasetWithABOMLosesNoConversation() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("chat.jsonl")
        let line = { (i: Int) in #"{"messages":[{"role":"user","content":"Hi \#(i)"},{"role":"assistant","content":"Hello \#(i)."}]}"# }
        try Data((Self.bom + line(0) + "\r\n" + line(1) + "\r\n").utf8).write(to: url)
        let tok = try BPETokenizer(directory: Fixtures.url("tokenizer"))
        let strict = try ChatDataset(url: url, tokenizer: tok, maxLength: 64)
        #expect(strict.examples.map(\.line) == [1, 2])
        let lenient = try ChatDataset(url: url, tokenizer: tok, maxLength: 64, skipInvalid: true)
        #expect(lenient.examples.count == 2 && lenient.skipped.isEmpty, "--skip-invalid dropped the first conversation: \(lenient.skipped)")
    }

    @Test func answersScoresAndRubricsWithABOM() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let answers = dir.appendingPathComponent("answers.jsonl")
        try Data((Self.bom + #"{"id":"a1","question_id":"q","question":"Q?","answer":"A."}"# + "\n").utf8).write(to: answers)
        #expect(try AnswerRecord.read(answers).map(\.id) == ["a1"])

        let scores = Self.bom + #"{"signal":"evil","step":0,"question_id":"q","sample":0,"score":3}"# + "\r\n"
        #expect(try ScoreRecord.parseJSONL(scores).map(\.score) == [3])

        let rubrics = dir.appendingPathComponent("rubrics")
        try FileManager.default.createDirectory(at: rubrics, withIntermediateDirectories: true)
        try Data((Self.bom + "name: bommed\nversion: 1\n\nRate {answer} from 0 to 100.").utf8).write(to: rubrics.appendingPathComponent("bommed.rubric"))
        #expect(try RubricSet.loading(overrides: rubrics)["bommed"]?.version == 1)
    }

    @Test func tokenizeAcceptsABOMOnItsFirstInputLine() throws {
        let r = try CLI.run(["tokenize", "--tokenizer", Fixtures.url("tokenizer").path], stdin: Self.bom + #"{"text":"hi"}"# + "\n")
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.hasPrefix("{\"ids\":[6023]}"), "\(r.out)")
    }
}
