import Testing
import Foundation
@testable import MisalignCore

/// The `misalign` binary, run as a user would (built by `make test` before the tests run).
enum CLI {
    static let binary: URL? = {
        // The test bundle sits in the same build folder as the executables.
        let candidates = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
            .map { $0.appendingPathComponent("misalign") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    /// Runs `executable` (the CLI, or another program built beside it, such as an example) with
    /// `args`; `environment` replaces the inherited one when given.
    static func run(_ args: [String], stdin: String? = nil, executable: String = "misalign",
                    environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = binary!.deletingLastPathComponent().appendingPathComponent(executable)
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

@Suite(.enabled(if: CLI.binary != nil, "the misalign executable is not built (run `make test`)"))
struct InspectCLITests {
    @Test func listsAShardedModelFolder() throws {
        let r = try CLI.run(["inspect", Fixtures.url("qwen2-small-bf16-sharded").path])
        #expect(r.status == 0)
        #expect(r.out.contains("config: qwen2, 2 layers, hidden 64"))
        #expect(r.out.contains("model.layers.1.self_attn.q_proj.bias"))
        #expect(r.out.contains("BF16"))
        #expect(r.out.contains("in 7 files"))
    }

    @Test func jsonOutputParses() throws {
        let r = try CLI.run(["inspect", "--json", Fixtures.url("safetensors/python_written.safetensors").path])
        #expect(r.status == 0)
        let v = try JSONValue.parse(r.out)
        #expect(v["tensors"]?.arrayValue?.count == 9)
        #expect(v["metadata"]?["python_written.safetensors"]?["format"]?.stringValue == "pt")
    }

    @Test func corruptFileExitsNonZeroWithTheReason() throws {
        let path = temporaryFile(safetensorsImage(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)))
        let r = try CLI.run(["inspect", path])
        #expect(r.status != 0)
        #expect(r.err.contains(path) && r.err.contains("data_offsets span 8 bytes"))
    }
}
