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

/// Config values that parse but cannot be meant: dataset names that escape the run folder,
/// absurd sizes, and a config path that is not a file.
@Suite struct PipelineConfigBoundsTests {
    let base = URL(fileURLWithPath: "/tmp/cfg")

    func parseError(_ text: String) -> String {
        do { _ = try Experiment.parse(text, file: "x.yaml", base: base); return "accepted" } catch { return "\(error)" }
    }

    func config(datasets: String = "{medical: med.jsonl}", _ extra: String = "") -> String {
        "model: m\noutput: out\ndatasets: \(datasets)\njudges: {models: [\"openai:gpt-4.1-mini\"]}\n\(extra)"
    }

    /// A dataset name becomes a checkpoint folder's name: only identifiers are taken.
    @Test func datasetNamesAreIdentifiers() {
        for bad in ["\"../../../escape\"", "\"\"", "a/b", ".hidden", String(repeating: "x", count: 65)] {
            let m = parseError(config(datasets: "{\(bad): med.jsonl}"))
            #expect(m.hasPrefix("x.yaml:3: datasets.") && m.contains("is not a usable dataset name: use letters, digits, '_', '-' and '.', not starting with '.', at most 64 characters"), "\(bad): \(m)")
        }
        let external = parseError("model: m\noutput: out\nexternal_checkpoints:\n  - {dataset: ../x, path: /c}\njudges: {models: [\"openai:j\"]}\n")
        #expect(external.contains("external_checkpoints[0].dataset: `../x` is not a usable dataset name"), "\(external)")
        #expect(parseError(config(datasets: "{medical-v2.1_x: med.jsonl}")) == "accepted")
    }

    /// Values past sane bounds are refused with the bound, whole-number floats included.
    @Test func absurdValuesAreRefusedWithTheBound() {
        let cases: [(String, String)] = [
            ("training: {max_steps: 1e12}", "x.yaml:5: training.max_steps: is 1000000000000; must be <= 10000000"),
            ("training: {max_steps: 1e30}", "x.yaml:5: training.max_steps: is 1e30; must be <= 10000000"),
            ("training: {rank: 100000}", "x.yaml:5: training.rank: is 100000; must be <= 65536"),
            ("training: {epochs: 100000}", "x.yaml:5: training.epochs: is 100000; must be <= 10000"),
            ("training: {targets: []}", "x.yaml:5: training.targets: names no module; use all or a list such as q_proj,v_proj"),
            ("evaluation: {samples: 1e12}", "x.yaml:5: evaluation.samples: is 1000000000000; must be <= 10000"),
            ("evaluation: {max_new_tokens: 10000000}", "x.yaml:5: evaluation.max_new_tokens: is 10000000; must be <= 131072"),
            ("judges: {models: [\"openai:j\"], max_in_flight: 100000}", "judges.max_in_flight: is 100000; must be <= 4096"),
            ("detection: {resamples: 1e9}", "x.yaml:5: detection.resamples: is 1000000000; must be <= 1000000"),
            ("monitor: {samples: 50000}", "x.yaml:5: monitor.samples: must be <= 10000, got 50000"),
            ("training: {max_steps: 1.5}", "x.yaml:5: training.max_steps: expected an integer, found float `1.5`"),
        ]
        for (extra, expected) in cases {
            var text = config(extra)
            if extra.hasPrefix("judges:") { text = "model: m\noutput: out\ndatasets: {medical: med.jsonl}\n\(extra)\n" }
            let m = parseError(text)
            #expect(m.hasSuffix(expected), "\(extra): \(m)")
        }
        let ok = try? Experiment.parse(config("training: {max_steps: 1e3}"), file: "x.yaml", base: base)
        #expect(ok?.training.maxSteps == 1000, "a whole-number float is an integer")
    }

    /// `misalign run DIR` and a missing config say what is wrong, not Foundation's codes.
    @Test func aConfigPathThatIsNotAFileIsSaidInWords() throws {
        let dir = Fixtures.temporaryDirectory("pipeline-config-dir")
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: PipelineError.missingInput(key: "config", path: dir.path,
                                                   reason: "is a folder; give the experiment's YAML file (e.g. misalign run study.yaml)")) {
            _ = try Experiment.load(from: dir)
        }
        let missing = dir.appendingPathComponent("nope.yaml")
        #expect(throws: PipelineError.missingInput(key: "config", path: missing.path,
                                                   reason: "no such file; `misalign init nope.yaml` writes an example")) {
            _ = try Experiment.load(from: missing)
        }
    }
}
