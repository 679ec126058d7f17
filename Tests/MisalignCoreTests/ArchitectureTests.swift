import Foundation
import Testing
import MisalignCore

/// The layering the package promises (Docs/Architecture.md), checked from the sources: each
/// library target depends only on targets below it, each file imports only what its target
/// depends on, and nothing in the library uses the testing scaffolding. The target graph makes an
/// upward import a compile error already; this names the offence plainly and prints the graph.
@Suite struct ArchitectureTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Bottom to top.
    static let layers = ["MisalignKernels", "MisalignIO", "MisalignHTTP", "MisalignTokenizer", "MisalignModel",
                         "MisalignGeneration", "MisalignJudge", "MisalignChangePoint", "MisalignPipeline", "MisalignReport"]

    /// Each `.target(name: "X", dependencies: [...])` of Package.swift: X's direct dependencies.
    static func targetGraph() throws -> [String: [String]] {
        let manifest = try String(contentsOf: repo.appendingPathComponent("Package.swift"), encoding: .utf8)
        let target = try Regex(#"\.target\(name: "(\w+)", dependencies: \[([^\]]*)\]"#)
        var graph: [String: [String]] = [:]
        for m in manifest.matches(of: target) {
            let name = String(m.output[1].substring!)
            let deps = String(m.output[2].substring!).matches(of: try Regex(#""(\w+)""#)).map { String($0.output[1].substring!) }
            graph[name] = deps.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
        }
        return graph
    }

    static func closure(_ t: String, _ g: [String: [String]]) -> Set<String> {
        var seen: Set<String> = [], todo = g[t] ?? []
        while let d = todo.popLast() {
            if seen.insert(d).inserted { todo += g[d] ?? [] }
        }
        return seen
    }

    @Test func eachLayerDependsOnlyOnLayersBelowIt() throws {
        let g = try Self.targetGraph()
        var lines: [String] = []
        for (i, t) in Self.layers.enumerated() {
            let deps = try #require(g[t], "Package.swift has no target \(t)")
            let ours = deps.filter { $0.hasPrefix("Misalign") }
            for d in ours {
                let j = try #require(Self.layers.firstIndex(of: d), "\(t) depends on \(d), which is no library layer (the testing target?)")
                #expect(j < i, "\(t) (layer \(i + 1)) depends on \(d) (layer \(j + 1)), above it")
            }
            lines.append("\(i + 1). \(t) -> \(deps.joined(separator: ", "))")
        }
        #expect(Set(try #require(g["MisalignCore"])) == Set(Self.layers), "MisalignCore re-exports every layer")
        print("target graph (bottom up):\n" + lines.joined(separator: "\n"))
    }

    @Test func eachFileImportsOnlyWhatItsTargetDependsOn() throws {
        let g = try Self.targetGraph()
        let importLine = try Regex(#"(?m)^(?:@testable |@_exported |@preconcurrency )?import (Misalign\w+)"#)
        var offences: [String] = []
        for t in Self.layers {
            let allowed = Self.closure(t, g)
            let dir = Self.repo.appendingPathComponent("Sources/\(t)")
            let files = FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
            #expect(!files.isEmpty, "no sources in \(dir.path)")
            for f in files {
                let text = try String(contentsOf: dir.appendingPathComponent(f), encoding: .utf8)
                for m in text.matches(of: importLine) {
                    let module = String(m.output[1].substring!)
                    if !allowed.contains(module) { offences.append("Sources/\(t)/\(f) imports \(module), which \(t) does not depend on") }
                }
            }
        }
        #expect(offences.isEmpty, "\(offences.joined(separator: "\n"))")
    }

    /// The out-of-package consumer (Examples/Embedding) compiled as an outsider compiles it:
    /// against the built modules, without the package's name (so `package` declarations are
    /// out of reach) and without `@testable`. A source that reaches for a `package` hook must
    /// fail the same way, or the check proves nothing.
    @Test func theEmbeddingExampleNeedsOnlyThePublicAPI() throws {
        let bin = try CLI.executable().deletingLastPathComponent()
        func typecheck(_ file: URL) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            let src = Self.repo.appendingPathComponent("Sources").path
            p.arguments = ["swiftc", "-typecheck", "-I", bin.appendingPathComponent("Modules").path]
                + ["CBLAS", "CCurl", "CSQLite"].flatMap { ["-Xcc", "-fmodule-map-file=\(src)/\($0)/module.modulemap"] }
                + ["-Xcc", "-fmodule-map-file=\(bin.path)/CMisalignKernels.build/module.modulemap", "-Xcc", "-I", "-Xcc", "\(src)/CMisalignKernels/include"]
                + ["-Xcc", "-fmodule-map-file=\(Self.repo.path)/.build/checkouts/Yams/Sources/CYaml/include/module.modulemap", file.path]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = err
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let example = Self.repo.appendingPathComponent("Examples/Embedding/Sources/Embedding/main.swift")
        let (status, text) = try typecheck(example)
        #expect(status == 0, "\(text)")
        let dir = Fixtures.temporaryDirectory("outsider")
        defer { try? FileManager.default.removeItem(at: dir) }
        let reach = dir.appendingPathComponent("reach.swift")
        try "import MisalignCore\nStageHooks.observeUnits(nil)\n".write(to: reach, atomically: true, encoding: .utf8)
        let (badStatus, badText) = try typecheck(reach)
        #expect(badStatus != 0 && badText.contains("cannot find 'StageHooks' in scope"), "\(badText)")
        // No example reaches inside: none uses @testable.
        for name in try FileManager.default.subpathsOfDirectory(atPath: Self.repo.appendingPathComponent("Examples").path)
        where name.hasSuffix(".swift") && !name.contains(".build/") {
            let text = try String(contentsOf: Self.repo.appendingPathComponent("Examples/\(name)"), encoding: .utf8)
            #expect(!text.contains("@testable"), "Examples/\(name) uses @testable")
        }
    }
}
