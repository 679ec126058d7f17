import Foundation
import MisalignIO

/// One answer to judge: a JSONL line `{"id", "question_id", "question", "answer"}`.
public struct AnswerRecord: Sendable, Equatable {
    public var id: String
    public var questionID: String
    public var question: String
    public var answer: String
    public init(id: String, questionID: String, question: String, answer: String) {
        self.id = id; self.questionID = questionID; self.question = question; self.answer = answer
    }

    /// Reads a JSONL answers file (`JSONLines`: a byte order mark and blank lines are skipped); errors name the file and line.
    /// Ids must be unique (they key the output rows and resumption).
    public static func read(_ url: URL) throws(JudgeError) -> [AnswerRecord] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .invalidInput("cannot read answers file \(url.path)")
        }
        var out: [AnswerRecord] = []
        var seen = Set<String>()
        for (number, line) in JSONLines.lines(data).lines {
            let where_ = "\(url.path):\(number)"
            let v: JSONValue
            do { v = try JSONValue.parse(line) } catch { throw .invalidInput("\(where_): \(error.description)") }
            func field(_ k: String) throws(JudgeError) -> String {
                if let s = v[k]?.stringValue { return s }
                if let n = v[k]?.intValue { return String(n) } // numeric ids are common
                throw .invalidInput("\(where_): missing string field \"\(k)\"")
            }
            let r = AnswerRecord(id: try field("id"), questionID: try field("question_id"), question: try field("question"), answer: try field("answer"))
            guard seen.insert(r.id).inserted else { throw .invalidInput("\(where_): duplicate id \"\(r.id)\"") }
            out.append(r)
        }
        return out
    }
}
