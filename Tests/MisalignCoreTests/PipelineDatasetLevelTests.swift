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

/// `datasets:` groups with levels and a control, and `training.holdout`, in the config and
/// through a real pipeline run killed with SIGKILL and resumed.
@Suite struct PipelineDatasetLevelTests {
    let base = URL(fileURLWithPath: "/tmp/cfg")

    func parse(_ datasets: String, training: String = "") throws -> Experiment {
        try Experiment.parse("model: m\noutput: out\ndatasets:\n\(datasets)\nseeds: [0]\n\(training)judges: {models: [\"openai:gpt-4.1-mini\"]}\n",
                             file: "x.yaml", base: base)
    }

    func error(_ datasets: String, training: String = "") -> String {
        do { _ = try parse(datasets, training: training); return "" } catch { return "\(error)" }
    }

    @Test func levelsAreRunDatasetsWithTheirControl() throws {
        let e = try parse("""
              medical:
                misaligned_2: med/m2.jsonl
                normal: med/normal.jsonl
                misaligned_1: med/m1.jsonl
                control: normal
              math: math.jsonl
            """)
        #expect(e.datasets.map(\.name) == ["medical.misaligned_2", "medical.normal", "medical.misaligned_1", "math"])
        #expect(e.datasets.map(\.path.path) == ["/tmp/cfg/med/m2.jsonl", "/tmp/cfg/med/normal.jsonl", "/tmp/cfg/med/m1.jsonl", "/tmp/cfg/math.jsonl"])
        #expect(e.controls == ["medical.misaligned_2": "medical.normal", "medical.misaligned_1": "medical.normal"])
        #expect(e.runs.map(\.description) == ["medical.misaligned_2/seed-0", "medical.normal/seed-0", "medical.misaligned_1/seed-0", "math/seed-0"])
        // A group without control is levels only; plain entries work as before.
        let plain = try parse("  medical: {a: a.jsonl, b: b.jsonl}\n  math: m.jsonl")
        #expect(plain.datasets.map(\.name) == ["medical.a", "medical.b", "math"] && plain.controls.isEmpty)
    }

    @Test func badGroupsAreNamedWithTheirKey() {
        let notALevel = error("  medical: {a: a.jsonl, control: b}")
        #expect(notALevel.contains("datasets.medical.control") && notALevel.contains("`b` is not a level of medical (a); name one of them"), "\(notALevel)")
        let only = error("  medical: {a: a.jsonl, control: a}")
        #expect(only.contains("datasets.medical.control") && only.contains("is the group's only level; add the levels to compare with it"), "\(only)")
        #expect(error("  medical: {control: a}").contains("names no level"))
        #expect(error("  medical: {a: a.jsonl}\n  medical.a: x.jsonl").contains("names the run dataset `medical.a` a second time"))
        #expect(error("  medical: {\"a/b\": a.jsonl}").contains("is not a usable dataset name"))
    }

    @Test func holdoutIsBounded() throws {
        #expect(try parse("  m: m.jsonl", training: "training: {holdout: 0.1}\n").training.holdout == 0.1)
        #expect(try parse("  m: m.jsonl").training.holdout == 0)
        #expect(error("  m: m.jsonl", training: "training: {holdout: 1}\n").contains("training.holdout: is 1.0; must be in [0, 1)"))
        #expect(error("  m: m.jsonl", training: "training: {holdout: -0.1}\n").contains("training.holdout"))
    }

    /// Levels, a control and a holdout through `misalign run`, killed twice in training with
    /// SIGKILL: the resumed run holds out the same examples (same held-out losses, bit for
    /// bit, as an uninterrupted run), and the report compares the level with its control.
    @Test func killedRunWithHoldoutAndLevelsResumesToTheSameLosses() throws {
        let f = try PipelineFixture("pipeline-levels")
        func config(_ output: String) -> String {
            f.config(output: output)
                .replacingOccurrences(of: "  medical: medical.jsonl\n  math: math.jsonl\n",
                                      with: "  medical:\n    misaligned_2: medical.jsonl\n    normal: math.jsonl\n    control: normal\n")
                .replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]")
                .replacingOccurrences(of: "  checkpoint_every: 2\n", with: "  checkpoint_every: 2\n  holdout: 0.5\n")
        }
        let killed = try f.writeConfig(config("killed"), name: "killed.yaml")
        let reference = try f.writeConfig(config("reference"), name: "reference.yaml")
        for point in ["train:3", "train:5"] {
            let r = try runMisalign(["run", killed.path, "--quiet"], env: ["MISALIGN_TEST_KILL_AT": point])
            #expect(r.signaled && r.status == SIGKILL, "expected a kill at \(point): \(r.status) \(r.err)")
        }
        let last = try runMisalign(["run", killed.path, "--quiet"])
        #expect(last.status == 0 && !last.signaled, "\(last.err)")
        let ref = try runMisalign(["run", reference.path, "--quiet"])
        #expect(ref.status == 0, "\(ref.err)")

        func losses(_ name: String) throws -> [String] {
            try RunStore(run: f.dir.appendingPathComponent(name), create: false)
                .rows("SELECT dataset, seed, step, loss, tokens FROM heldout_loss ORDER BY dataset, step").map { $0.map(\.description).joined(separator: "|") }
        }
        let a = try losses("killed"), b = try losses("reference")
        #expect(a == b && b.count == 2 * 3, "\(a) vs \(b)")
        let metrics = try String(contentsOf: f.dir.appendingPathComponent("killed/checkpoints/medical.misaligned_2-seed0/metrics.jsonl"), encoding: .utf8)
        #expect(metrics.split(separator: "\n").filter { $0.contains("heldout_loss") }.count == 3)

        let input = try ReportInput.load(runDirectory: f.dir.appendingPathComponent("killed"))
        #expect(input.controls?.map(\.label) == ["medical.misaligned_2 - medical.normal, seed 0"])
        #expect(input.controls?.first?.signals.first?.points.map(\.step) == [0, 2, 4, 6])
        #expect(input.training.allSatisfy { $0.points.filter { $0.heldOutLoss != nil }.map(\.step) == [2, 4, 6] })
        let page = HTMLReport.render(input)
        #expect(ReportFixtures.section(page, "training")?.contains("held-out") == true)
    }
}
