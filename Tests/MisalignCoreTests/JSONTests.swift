import Testing
import Foundation
@testable import MisalignCore

@Suite struct JSONTests {
    @Test func parsesNestedDocumentInOrder() throws {
        let v = try JSONValue.parse(#"{"b": [1, -2.5e3, true, null], "a": {"x": "\u00e9\ud83d\ude00"}}"#)
        #expect(v.objectValue?.keys == ["b", "a"])
        #expect(v["b"]?.arrayValue == [.int(1), .double(-2500), .bool(true), .null])
        #expect(v["a"]?["x"]?.stringValue == "é😀")
    }
}
