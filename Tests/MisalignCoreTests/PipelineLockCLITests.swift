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

/// `misalign run` beside another writer of the same run folder, and `status` beside it.
@Suite
struct PipelineLockCLITests {
    @Test func aSecondRunExitsOneNamingTheHolderWhileStatusReads() throws {
        let f = try PipelineFixture("pipeline-cli-lock")
        let e = try Experiment.load(from: f.writeConfig(f.config()))
        let holder = PipelineRunner(e)
        try holder.prepare()  // this process is the running writer
        defer { holder.lock?.release() }
        let second = try CLI.run(["run", e.source])
        #expect(second.status == 1, "\(second.err)")
        #expect(second.err.contains("\(e.output.path) is in use by another misalign run (pid \(getpid()) on "), "\(second.err)")
        #expect(!second.err.contains("UNIQUE constraint"))
        let status = try CLI.run(["status", e.output.path])
        #expect(status.status == 0 && status.out.contains("in progress"), "\(status.err)")
    }
}
