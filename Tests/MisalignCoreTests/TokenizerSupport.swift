import Foundation
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

/// The Qwen2.5 tokenizer from `Tests/Fixtures/tokenizer`, loaded once for all tokenizer tests.
enum QwenFixture {
    static let directory = Fixtures.url("tokenizer")
    static let tokenizer: BPETokenizer = {
        do { return try BPETokenizer(directory: directory) } catch { fatalError("cannot load fixture tokenizer: \(error)") }
    }()

    /// Parses every line of a JSONL fixture.
    static func lines(_ name: String) throws -> [JSONValue] {
        let text = try String(contentsOf: Fixtures.url("tokenizer/\(name)"), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    static func ids(_ v: JSONValue?) -> [Int] { (v?.arrayValue ?? []).compactMap { $0.intValue } }
}
