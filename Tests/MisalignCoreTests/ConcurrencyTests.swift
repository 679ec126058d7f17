import Foundation
import Testing
import MisalignCore

/// The concurrency rules of the sources (issue #19): every `@unchecked Sendable` says, in a
/// `// Unchecked Sendable:` comment right above its declaration, the invariant that makes it
/// safe (the compiler cannot check it, so a reader must be able to); and `runBlocking` and
/// `runOffPool` (MisalignIO/Blocking.swift) are the only bridges between blocking and async code.
@Suite struct ConcurrencyTests {
    static let marker = "// Unchecked Sendable:"

    /// Every Swift file under `Sources/` (library, CLI and testing scaffolding), by repository path.
    static func sources() throws -> [(path: String, text: String)] {
        let root = Fixtures.repo("Sources")
        var out: [(String, String)] = []
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
        while let url = files?.nextObject() as? URL {
            guard url.pathExtension == "swift" else { continue }
            let rel = "Sources/" + url.path.dropFirst(root.path.count).drop(while: { $0 == "/" })
            out.append((rel, try String(contentsOf: url, encoding: .utf8)))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    /// The 1-based lines of `text` that declare `@unchecked Sendable` (not in a comment), each
    /// with whether the marker comment justifies it. The marker must open a `//` comment
    /// block (not `///` documentation) directly above the declaration; attribute lines
    /// (`@available`, `@frozen`...) may sit between the comment and the declaration.
    static func uncheckedDeclarations(_ text: String) -> [(line: Int, justified: Bool)] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var out: [(Int, Bool)] = []
        for (i, line) in lines.enumerated() where line.contains("@unchecked Sendable") && !line.hasPrefix("//") {
            var j = i - 1
            while j >= 0, lines[j].hasPrefix("@") { j -= 1 }
            var justified = false
            while j >= 0, lines[j].hasPrefix("//"), !lines[j].hasPrefix("///") {
                if lines[j].hasPrefix(marker) { justified = true }
                j -= 1
            }
            out.append((i + 1, justified))
        }
        return out
    }

    @Test func theRuleFindsWhatItShould() {
        let text = """
            /// Documentation.
            // Unchecked Sendable: the pointer is written only in init.
            final class A: @unchecked Sendable {}
            // Unchecked Sendable: set once,
            // read after.
            @available(macOS 15, *)
            struct B: @unchecked Sendable {}
            /// Unchecked Sendable: a doc comment does not count.
            final class C: @unchecked Sendable {}
            final class D: Sendable {}
            // a comment naming @unchecked Sendable is no declaration
            final class E: @unchecked Sendable {}
            """
        let found = Self.uncheckedDeclarations(text)
        #expect(found.map(\.line) == [3, 7, 9, 12])
        #expect(found.map(\.justified) == [true, true, false, false])
    }

    /// Every `@unchecked Sendable` in `Sources/` carries its `// Unchecked Sendable:` reason.
    @Test func everyUncheckedSendableSaysWhyItIsSafe() throws {
        var offences: [String] = [], count = 0
        for (path, text) in try Self.sources() {
            for d in Self.uncheckedDeclarations(text) {
                count += 1
                if !d.justified { offences.append("\(path):\(d.line): @unchecked Sendable without a `\(Self.marker) <invariant>` comment directly above") }
            }
        }
        print("@unchecked Sendable in Sources/: \(count), \(offences.count) without a reason")
        #expect(count > 0, "the scan found no declaration at all: is Sources/ where it looked?")
        #expect(offences.isEmpty, "\(offences.joined(separator: "\n"))")
    }

    /// A thread that waits on a semaphore for async work is a bridge; the one bridge each way
    /// lives in MisalignIO/Blocking.swift (`runBlocking`, `runOffPool`).
    @Test func semaphoreBridgesLiveOnlyInBlocking() throws {
        var offences: [String] = []
        for (path, text) in try Self.sources() where path != "Sources/MisalignIO/Blocking.swift" {
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("DispatchSemaphore") && !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                offences.append("\(path):\(i + 1): a DispatchSemaphore; bridge with runBlocking or runOffPool instead")
            }
        }
        #expect(offences.isEmpty, "\(offences.joined(separator: "\n"))")
    }
}
