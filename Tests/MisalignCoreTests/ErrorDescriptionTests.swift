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

/// Every public error type is a `LocalizedError` whose `errorDescription` is its message, so
/// an app showing `error.localizedDescription` shows what went wrong and what to do.
@Suite struct ErrorDescriptionTests {
    /// One sample of every public error type of the library (`declaredErrorTypes` below
    /// checks that this list is complete).
    static let samples: [any Error & CustomStringConvertible] = [
        AdapterDynamicsError.noModules(checkpoint: "checkpoints/step-10"),
        ChangePointError.invalidInput(field: "s.jsonl line 1: score", reason: "is 150, outside the judge scale 0-100"),
        ConfigError.missingFile(path: "/m/config.json"),
        EarlyWarningError.invalidSetting(name: "monitor.every_k", detail: "must be >= 1"),
        FileError.cannotOpen(path: "/x", reason: "No such file"),
        GGUFError.unsupportedTensorType(file: "m.gguf", tensor: "blk.0.ffn_down.weight", type: "IQ2_XS"),
        SettingError(section: "evaluation", setting: "top-p", detail: "is 0.0; must be in (0, 1]"),
        SettingProblem(detail: "expected a number, found text `x`"),
        HTTPError.retryAfterTooLong(url: "http://127.0.0.1:1/v1", status: 429, seconds: 3600, cap: 60),
        JSONParseError(message: "unexpected end of input", offset: 3),
        JudgeError.timeout(url: "http://127.0.0.1:1/v1", seconds: 5),
        LoRAError.missingFile(path: "/a/adapter_config.json"),
        ModelError.invalidRequest("temperature must be >= 0 (0 = greedy), got -1.0"),
        PipelineError.fileExists(path: "misalign.yaml"),
        RemoteGenerationError.missingAPIKey(variable: "VLLM_API_KEY"),
        ReportError.notARun(path: "/r", reason: "no store.sqlite"),
        SafeTensorsError.truncated(file: "w.safetensors", size: 3),
        TokenizerError.fileMissing(path: "/t/tokenizer.json"),
        TrainingError.invalidSetting(name: "lr", detail: "is -1; it must be in [0, 10]"),
        TraitVectorError.hiddenSizeMismatch(file: "evil.safetensors", tensor: "vector", found: 896, model: 64),
        TraitVectorBuildError.noInstructions(file: "traits/evil.json"),
    ]

    @Test func localizedDescriptionIsTheMessage() {
        for error in Self.samples {
            #expect(!error.description.isEmpty)
            #expect(error.localizedDescription == error.description, "\(type(of: error))")
            #expect((error as? any LocalizedError)?.errorDescription == error.description, "\(type(of: error))")
        }
    }

    /// The public error types declared in the library's targets (`Fixtures.librarySources`), found by
    /// reading the sources: `public enum|struct|class|actor NAME: ... Error ...`.
    static func declaredErrorTypes() throws -> (types: Set<String>, localized: Set<String>) {
        let declaration = try NSRegularExpression(pattern: #"public\s+(?:final\s+)?(?:enum|struct|class|actor)\s+(\w+)\s*:[^{]*\bError\b"#)
        let conformance = try NSRegularExpression(pattern: #"extension\s+(\w+)\s*:[^{]*\bLocalizedError\b"#)
        var types = Set<String>(), localized = Set<String>()
        for url in try Fixtures.librarySources() {
            let text = try String(contentsOf: url, encoding: .utf8)
            let range = NSRange(text.startIndex..., in: text)
            for m in declaration.matches(in: text, range: range) { types.insert(String(text[Range(m.range(at: 1), in: text)!])) }
            for m in conformance.matches(in: text, range: range) { localized.insert(String(text[Range(m.range(at: 1), in: text)!])) }
        }
        return (types, localized)
    }

    /// A new public error type must conform to `LocalizedError` and appear in `samples`.
    @Test func everyDeclaredErrorTypeIsLocalizedAndSampled() throws {
        let (types, localized) = try Self.declaredErrorTypes()
        #expect(types.count >= 14, "found \(types.sorted())")
        #expect(types.subtracting(localized).isEmpty, "without `extension X: LocalizedError`: \(types.subtracting(localized).sorted())")
        let sampled = Set(Self.samples.map { String(describing: type(of: $0)) })
        #expect(types.subtracting(sampled).isEmpty, "add a sample of \(types.subtracting(sampled).sorted()) to ErrorDescriptionTests.samples")
    }
}
