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

/// Each failure gives a typed message and loses nothing: the next run finishes the job.
@Suite(.serialized) struct PipelineFailureTests {
    func run(_ e: Experiment) async throws -> PipelineSummary { try await PipelineRunner(e).run() }

    @Test func missingModelFilesAndUnwritableOutputFailBeforeAnyWork() async throws {
        let f = try PipelineFixture("pipeline-bad-input")
        try FileManager.default.removeItem(at: f.model.appendingPathComponent("tokenizer.json"))
        let e = try Experiment.load(from: f.writeConfig(f.config()))
        await #expect(throws: PipelineError.missingInput(key: "model", path: f.model.path, reason: "no tokenizer.json")) { try await run(e) }

        // A regular file where the output folder should be: even root cannot write there.
        try FileManager.default.copyItem(at: Fixtures.url("tokenizer/tokenizer.json"), to: f.model.appendingPathComponent("tokenizer.json"))
        try "x".write(to: f.dir.appendingPathComponent("blocked"), atomically: true, encoding: .utf8)
        let blocked = try Experiment.load(from: f.writeConfig(f.config(output: "blocked/run")))
        // Said in words (not Foundation's "NSCocoaErrorDomain error 256"): which path is a file.
        do { _ = try await run(blocked); Issue.record("expected an output error") } catch let err as PipelineError {
            guard case .config(_, "output", _, let reason) = err else { Issue.record("got \(err)"); return }
            #expect(reason.contains("blocked/run cannot be made: ") && reason.contains("/blocked is a file") && !reason.contains("NSCocoa"), "\(err)")
        }
        let onFile = try Experiment.load(from: f.writeConfig(f.config(output: "blocked")))
        do { _ = try await run(onFile); Issue.record("expected an output error") } catch let err as PipelineError {
            #expect(err.description.contains("output: ") && err.description.contains("/blocked is a file; output: names the run folder"), "\(err)")
        }
        let missingData = try Experiment.load(from: f.writeConfig(f.config().replacingOccurrences(of: "math: math.jsonl", with: "math: nope.jsonl")))
        await #expect(throws: PipelineError.missingInput(key: "datasets.math", path: f.dir.appendingPathComponent("nope.jsonl").path, reason: "no such file")) {
            try await run(missingData)
        }
        // A server backend whose API key variable is unset fails before any work, naming it.
        let vllm = try Experiment.load(from: f.writeConfig(f.config(
            output: "vllm-run", extra: "generation: {backend: vllm, url: \"http://h:1/v1\", served_model: q, api_key_env: MISALIGN_TEST_UNSET_KEY}")))
        await #expect {
            try await run(vllm)
        } throws: { e in
            guard case .backendUnavailable(let m) = e as? PipelineError else { return false }
            return m.contains("MISALIGN_TEST_UNSET_KEY") && m.contains("http://h:1/v1")
        }
        #expect(!FileManager.default.fileExists(atPath: f.dir.appendingPathComponent("vllm-run/store.sqlite").path), "nothing was started")
    }

    @Test func fullDiskDuringACheckpointKeepsWhatWasDoneAndResumes() async throws {
        let f = try PipelineFixture("pipeline-full-disk")
        let e = try Experiment.load(from: f.writeConfig(f.config(extra: "seeds: [0]").replacingOccurrences(of: "seeds: [0, 11]\n", with: "")))
        let folder = f.dir.path
        // The second run's first checkpoint cannot be written (ENOSPC at the rename).
        AtomicFile.beforeRenameHook = { tmp in
            if tmp.hasPrefix(folder) && tmp.contains("math-seed0") && tmp.contains("checkpoint-2") {
                throw FileError.cannotWrite(path: tmp, reason: "No space left on device")
            }
        }
        defer { AtomicFile.beforeRenameHook = nil }
        do { _ = try await run(e); Issue.record("expected the checkpoint write to fail") } catch let err as PipelineError {
            #expect(err.description.contains("No space left on device") && err.description.contains("finished work is kept"), "\(err)")
        }
        let store = try RunStore(run: e.output, create: false)
        #expect(try store.runState(RunID(dataset: "medical", seed: 0))?.trained == true)
        #expect(try store.checkpoints(RunID(dataset: "medical", seed: 0)).map(\.step) == [0, 2, 4, 6])
        AtomicFile.beforeRenameHook = nil
        let resumed = try await run(e)
        let checkpoints = try store.count("checkpoints"), lags = try store.count("lags")
        #expect(resumed.done["train"] == 6 && checkpoints == 8 && lags == 2)
    }

    @Test func aJudgeThatIsDownStopsTheRunWithoutLosingAnswers() async throws {
        let f = try PipelineFixture("pipeline-judge-down")
        let e = try Experiment.load(from: f.writeConfig(f.config(maxInFlight: 2, extra: "seeds: [0]").replacingOccurrences(of: "seeds: [0, 11]\n", with: "")))
        f.down.set(true)
        do { _ = try await run(e); Issue.record("expected the judge to be reported down") } catch let err as PipelineError {
            guard case .judgeUnavailable(_, let reason, let done, let remaining) = err else { Issue.record("got \(err)"); return }
            #expect(done == 0 && remaining == 32 * 3 && reason.contains("503"), "\(err)")
        }
        let store = try RunStore(run: e.output, create: false)
        let generations = try store.count("generations"), judgments = try store.count("judgments")
        #expect(generations == 32 && judgments == 0)
        // Only a few calls were tried before the stage gave up on the judge.
        #expect(f.server.requestCount <= 2 * 4)
        f.down.set(false)
        let resumed = try await run(e)
        let lags = try store.count("lags")
        #expect(resumed.done["generate"] == 0 && resumed.done["judge"] == 96 && lags == 2)
    }

    /// A disk that fills while verdicts are stored stops the judge stage with the documented
    /// "cannot write PATH: the disk is full", not SQLite's statement text or a judge outage.
    @Test func aFullDiskWhileJudgingIsSaidInWords() async throws {
        let f = try PipelineFixture("pipeline-judge-disk-full")
        let config = f.config(extra: "seeds: [0]").replacingOccurrences(of: "seeds: [0, 11]\n", with: "")
            .replacingOccurrences(of: "  math: math.jsonl\n", with: "")
        let e = try Experiment.load(from: f.writeConfig(config))
        f.down.set(true)
        await #expect(throws: PipelineError.self) { _ = try await run(e) }
        f.down.set(false)
        let before = f.server.requestCount
        let store = e.output.appendingPathComponent(RunStore.fileName)
        let pages = try #require(try RunStore(run: e.output, create: false).rows("PRAGMA page_count").first?.first?.int)
        SQLiteDatabase.setTestPageLimit(pages, under: e.output.path)
        defer { SQLiteDatabase.setTestPageLimit(nil, under: e.output.path) }
        do { _ = try await run(e); Issue.record("expected a full disk") } catch let err as PipelineError {
            #expect(err == .unwritable(path: store.path, reason: "the disk is full"), "\(err)")
            #expect(!err.description.contains("INSERT") && !err.description.contains("unavailable"), "\(err)")
        }
        #expect(f.server.requestCount > before && f.server.requestCount < before + 16 * 3,
                "the judge was asked, and the stage stopped sending calls: \(f.server.requestCount - before)")
    }
}
