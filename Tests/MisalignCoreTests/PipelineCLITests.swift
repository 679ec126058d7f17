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

/// `misalign init`, `run` errors, `status` and `inspect` on adapters, checkpoints and runs.
@Suite
struct PipelineCLITests {
    @Test func initRunStatusAndInspect() throws {
        let f = try PipelineFixture("pipeline-cli")
        let example = f.dir.appendingPathComponent("example.yaml")
        let first = try CLI.run(["init", example.path])
        #expect(first.status == 0 && first.out.contains("wrote"))
        let again = try CLI.run(["init", example.path])
        #expect(again.status != 0 && again.err.contains("already exists; pass --force"), "\(again.err)")

        let bad = try f.writeConfig(f.config() + "\nevaluation:\n  samples: 2\n", name: "bad.yaml")
        let dup = try CLI.run(["run", bad.path])
        #expect(dup.status != 0 && dup.err.contains("bad.yaml:") && dup.err.contains("evaluation: appears twice"), "\(dup.err)")

        let config = try f.writeConfig(f.config(extra: "seeds: [0]").replacingOccurrences(of: "seeds: [0, 11]\n", with: "")
            .replacingOccurrences(of: "  math: math.jsonl\n", with: ""))
        let run = try CLI.run(["run", config.path, "--json"])
        #expect(run.status == 0, "\(run.err)")
        let summary = try JSONValue.parse(run.out)
        #expect(summary["done"]?["judge"]?.intValue == 16 * 3 && summary["nothing_to_do"]?.boolValue == false, "\(run.out)")
        #expect(run.err.contains("generate 16/16"), "progress lines on stderr: \(run.err)")

        let runDir = f.dir.appendingPathComponent("run")
        let status = try CLI.run(["status", runDir.path, "--json"])
        let stages = try JSONValue.parse(status.out).arrayValue ?? []
        #expect(stages.map { $0["stage"]?.stringValue } == ["train", "dynamics", "generate", "judge", "aggregate", "detect"])
        #expect(stages.allSatisfy { $0["done"]?.intValue == $0["total"]?.intValue }, "\(status.out)")

        let ck = PipelineRunner.checkpointFolder(runDir, RunID(dataset: "medical", seed: 0)).appendingPathComponent("checkpoint-4")
        let adapter = try JSONValue.parse(try CLI.run(["inspect", ck.path, "--json"]).out)
        // rank 2 on q (64 -> 64) and v (64 -> 32) in both layers: 2 * (2*64 + 64*2 + 2*64 + 32*2).
        #expect(adapter["kind"]?.stringValue == "checkpoint" && adapter["step"]?.intValue == 4 && adapter["rank"]?.intValue == 2)
        #expect(adapter["modules"]?.arrayValue?.compactMap(\.stringValue) == ["q_proj", "v_proj"])
        let direct = try LoRAAdapter(directory: ck)
        #expect(adapter["parameters"]?.intValue == direct.parameterCount && direct.parameterCount > 0)

        let inspectRun = try CLI.run(["inspect", runDir.path])
        #expect(inspectRun.status == 0 && inspectRun.out.contains("kind: run") && inspectRun.out.contains("generations 16"), "\(inspectRun.out)")
        let notARun = try CLI.run(["status", f.dir.path])
        #expect(notARun.status != 0 && notARun.err.contains("is not a run directory"), "\(notARun.err)")
    }
}
