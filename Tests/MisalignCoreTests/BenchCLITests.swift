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

/// `misalign-bench`: every benchmark is listed and accepts its own name and options
/// (`misalign-bench tokenizer` once failed with `unknown argument tokenizer`, stopping `make bench`).
@Suite struct BenchCLITests {
    static let names = ["gemm", "safetensors", "matmul", "forward", "residency", "write-synthetic", "convert", "gguf",
                        "tokenizer", "changepoint", "train", "judge", "local-judge", "generate-study", "vectors", "families"]

    @Test func helpListsEveryBenchmarkAndItsOptions() throws {
        let r = try CLI.run(["--help"], executable: "misalign-bench")
        #expect(r.status == 0, "\(r.err)")
        let listed = r.out.split(separator: "\n").compactMap { $0.hasPrefix("  ") ? $0.split(separator: " ").first.map(String.init) : nil }
        #expect(listed.filter { $0 != "options:" } == Self.names)
        #expect(r.out.contains("options: --tokenizer X --mb X --no-hf"))
    }

    @Test func tokenizerRunsUnderItsOwnName() throws {
        let r = try CLI.run(["tokenizer", "--tokenizer", Fixtures.url("tokenizer").path, "--mb", "0.005", "--no-hf"], executable: "misalign-bench")
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("misalign encode:"))
        #expect(!r.out.contains("unknown argument"))
    }

    @Test func everyBenchmarkNameIsAcceptedAndABadOptionIsRefusedBeforeAnyWork() throws {
        // A name with an option none of the selected benchmarks takes: refused before the run,
        // so this costs nothing, yet each name goes through the command-line parsing.
        for name in Self.names {
            let r = try CLI.run([name, "--no-such-option"], executable: "misalign-bench")
            #expect(r.status == 2, "\(name): \(r.err)")
            #expect(r.err.contains("unknown option --no-such-option for \(name)"), "\(name): \(r.err)")
            #expect(!r.out.contains("== \(name)"), "\(name) started although its options were wrong")
        }
        let unknown = try CLI.run(["tokeniser"], executable: "misalign-bench")
        #expect(unknown.status == 2 && unknown.err.contains("unknown benchmark tokeniser; choose from gemm"))
        let missing = try CLI.run(["tokenizer", "--mb"], executable: "misalign-bench")
        #expect(missing.status == 2 && missing.err.contains("--mb needs a value"))
    }
}

/// A CLI suite cannot be skipped for want of a binary: it fails, saying how to build it.
@Suite struct CLITestSupportTests {
    @Test func aMissingExecutableFailsWithWhatToDo() {
        #expect {
            try CLI.executable("misalign-not-built")
        } throws: { error in
            "\(error)".contains("is not built") && "\(error)".contains("make test")
        }
    }

    @Test func noCLISuiteIsSilentlyDisabled() throws {
        let dir = Fixtures.root.deletingLastPathComponent().appendingPathComponent("MisalignCoreTests")
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) where file.hasSuffix(".swift") {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            #expect(!text.contains(".enabled(if: CLI" + ".binary"), "\(file) skips its suite when the binary is missing")
        }
    }
}
