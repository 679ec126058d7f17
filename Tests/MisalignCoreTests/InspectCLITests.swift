import Testing
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

/// The `misalign` binary, run as a user would (built by `make test` before the tests run).
enum CLI {
    /// The built executables' folder: the test bundle sits in the same build folder. `swift test`
    /// builds every product first; a run that skipped them (`--skip-build` after building only
    /// the tests) must fail with what to do, never skip the CLI suites silently.
    static func executable(_ name: String = "misalign") throws -> URL {
        let candidates = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
            .map { $0.appendingPathComponent(name) }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw NotBuilt(name: name, looked: candidates.map(\.path))
        }
        return found
    }

    /// The `misalign` executable; throws `NotBuilt` (failing the calling test) when absent.
    static var binary: URL { get throws { try executable() } }

    struct NotBuilt: Error, CustomStringConvertible {
        let name: String
        let looked: [String]
        var description: String {
            "the \(name) executable is not built (looked at \(looked.joined(separator: ", "))): run `make test`, or `swift build --build-tests` before `swift test --skip-build`"
        }
    }

    /// Runs `executable` (the CLI, or another program built beside it, such as an example) with
    /// `args`; `environment` replaces the inherited one when given.
    static func run(_ args: [String], stdin: String? = nil, executable: String = "misalign",
                    environment: [String: String]? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = try Self.executable(executable)
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

@Suite
struct InspectCLITests {
    @Test func listsAShardedModelFolder() throws {
        let r = try CLI.run(["inspect", Fixtures.url("qwen2-small-bf16-sharded").path])
        #expect(r.status == 0)
        #expect(r.out.contains("config: qwen2, 2 layers, hidden 64"))
        #expect(r.out.contains("model.layers.1.self_attn.q_proj.bias"))
        #expect(r.out.contains("BF16"))
        #expect(r.out.contains("in 7 files"))
    }

    @Test func namesTheFamily() throws {
        let r = try CLI.run(["inspect", Fixtures.url("llama/llama-small").path])
        #expect(r.status == 0)
        #expect(r.out.contains("family: Llama (model_type llama), no attention biases, llama3 rope scaling (factor 8.0, original context 64)"), "\(r.out)")
        let q = try CLI.run(["inspect", Fixtures.url("qwen2-small").path])
        #expect(q.out.contains("family: Qwen2 (model_type qwen2), q/k/v biases"))
        let j = try CLI.run(["inspect", "--json", Fixtures.url("llama/llama-small").path])
        let config = try JSONValue.parse(j.out)["config"]
        #expect(config?["family"]?.stringValue == "Llama" && config?["rope_scaling"]?["original_max_position_embeddings"]?.intValue == 64)
        let g = try CLI.run(["inspect", Fixtures.url("gemma2/gemma2-small").path])
        #expect(g.out.contains("family: Gemma 2 (model_type gemma2), no attention biases"), "\(g.out)")
        #expect(g.out.contains("gemma2: gelu_pytorch_tanh, query_pre_attn_scalar 24.0, soft-caps 5.0 (scores) and 8.0 (logits), sliding window 4 on 2 of 3 layers"), "\(g.out)")
        let gj = try JSONValue.parse(try CLI.run(["inspect", "--json", Fixtures.url("gemma2/gemma2-small").path]).out)["config"]?["gemma2"]
        #expect(gj?["sliding_layers"]?.arrayValue?.map { $0.intValue } == [0, 2] && gj?["final_logit_softcapping"]?.doubleValue == 8)
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
