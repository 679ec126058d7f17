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

/// `misalign run` killed with SIGKILL at points in every stage, then resumed: the final store
/// equals an uninterrupted run's (timings aside), and the judge never saw a request twice.
@Suite
struct PipelineKillTests {
    @Test func killedAtEveryStageResumesToTheSameStore() throws {
        let f = try PipelineFixture("pipeline-kill")
        let killed = try f.writeConfig(f.config(output: "killed"), name: "killed.yaml")
        let reference = try f.writeConfig(f.config(output: "reference"), name: "reference.yaml")

        // Each kill lands in a later stage than the one before: the resumed run redoes
        // nothing finished and continues to the next kill point.
        for point in ["train:3", "train:8", "dynamics:3", "generate:2", "generate:9", "judge:1", "judge:40", "aggregate:5", "detect:1"] {
            let r = try runMisalign(["run", killed.path, "--quiet"], env: ["MISALIGN_TEST_KILL_AT": point])
            #expect(r.signaled && r.status == SIGKILL, "expected a kill at \(point): \(r.status) \(r.err)")
        }
        let last = try runMisalign(["run", killed.path, "--quiet"])
        #expect(last.status == 0 && !last.signaled, "\(last.err)")
        let prompts = f.prompts()
        #expect(!prompts.isEmpty && Set(prompts).count == prompts.count, "the judge saw \(prompts.count - Set(prompts).count) repeated requests")

        let done = try runMisalign(["run", killed.path])
        #expect(done.status == 0 && done.out.contains("nothing to do"), "\(done.out) \(done.err)")
        #expect(f.server.requestCount == prompts.count)

        let start = f.server.requestCount
        let ref = try runMisalign(["run", reference.path, "--quiet"])
        #expect(ref.status == 0, "\(ref.err)")
        #expect(f.server.requestCount - start == prompts.count)

        let a = try PipelineFixture.snapshot(f.dir.appendingPathComponent("killed"))
        let b = try PipelineFixture.snapshot(f.dir.appendingPathComponent("reference"))
        for table in b.keys.sorted() {
            #expect(a[table] == b[table], "table \(table) differs: \(Set(a[table] ?? []).symmetricDifference(b[table] ?? []).prefix(3))")
            #expect(!(b[table] ?? []).isEmpty, "table \(table) is empty")
        }

        let status = try runMisalign(["status", f.dir.appendingPathComponent("killed").path])
        #expect(status.status == 0 && status.out.contains("complete") && status.out.contains("judge     192/192"), "\(status.out)")
    }
}
