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

/// The run folder's guards: one writer at a time (a lock the OS drops with its holder),
/// readers that never write, and stores that are damaged or on a full disk said in words.
@Suite(.serialized) struct PipelineGuardTests {
    /// A second writer on a run folder is refused naming the holder; the lock goes with its
    /// holder (released, or its process killed -9), never left stale.
    @Test func aSecondWriterIsRefusedNamingTheHolder() throws {
        let f = try PipelineFixture("pipeline-lock")
        let e = try Experiment.load(from: f.writeConfig(f.config()))
        let first = PipelineRunner(e)
        try first.prepare()
        let second = PipelineRunner(e)
        do { try second.prepare(); Issue.record("expected the lock to be held") } catch let err as PipelineError {
            guard case .locked(let run, let holder) = err else { Issue.record("got \(err)"); return }
            #expect(run == e.output.path && holder.contains("pid \(getpid()) on ") && holder.contains("started 20"), "\(holder)")
            #expect(err.description.contains("is in use by another misalign run") && err.description.contains("status and report can read"))
        }
        first.lock?.release()
        try second.prepare()
        second.lock?.release()

        // Another process holds it and dies by SIGKILL: the next writer gets it at once.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["python3", "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(60)",
                            e.output.appendingPathComponent(RunLock.fileName).path]
        try holder.run()
        var refused = false
        for _ in 0..<100 {
            do { _ = try RunLock(run: e.output); usleep(20_000) } catch { refused = true; break }
        }
        #expect(refused, "the other process should hold the lock")
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        _ = try RunLock(run: e.output)
    }

    /// Readers open the store read-only: beside a writer holding the lock, on a 0-byte store
    /// (left as it was, with a message instead of a schema), and without leaving files behind.
    @Test func readersNeverWriteTheStore() throws {
        let f = try PipelineFixture("pipeline-readers")
        let e = try Experiment.load(from: f.writeConfig(f.config()))
        let writer = PipelineRunner(e)
        try writer.prepare()
        try writer.store.recordRun(RunID(dataset: "medical", seed: 0), totalSteps: 6)
        let status = try RunStatus.load(run: e.output)
        #expect(status.stages.first?.total == nil && !status.complete)
        writer.lock?.release()
        writer.store = nil

        let empty = f.dir.appendingPathComponent("empty-run")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let file = empty.appendingPathComponent(RunStore.fileName)
        _ = FileManager.default.createFile(atPath: file.path, contents: Data())
        let emptyError = #expect(throws: PipelineError.self) { _ = try RunStatus.load(run: empty) }
        #expect(emptyError?.description.contains("is empty: the run stopped before its store was set up") == true, "\(String(describing: emptyError))")
        #expect(SQLiteDatabase.fileSize(file.path) == 0, "the reader created nothing in the store")
        let left = try FileManager.default.contentsOfDirectory(atPath: empty.path)
        #expect(left == [RunStore.fileName], "\(left)")

        // A reader on a finished store: the bytes stay the same, no -wal or -shm appears.
        let before = try Data(contentsOf: e.output.appendingPathComponent(RunStore.fileName))
        let reader = try RunStore(run: e.output, create: false)
        #expect(try reader.count("runs") == 1)
        #expect(throws: PipelineError.self) { try reader.setMeta("x", "y") }
        #expect(try Data(contentsOf: e.output.appendingPathComponent(RunStore.fileName)) == before)
    }

    /// A store whose pages are corrupt, or a file that is no database, is refused as damaged
    /// with what to do, by readers and writers; status never calls it complete.
    @Test func aDamagedStoreSaysWhatToDo() throws {
        let dir = Fixtures.temporaryDirectory("pipeline-damaged")
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            let store = try RunStore(run: dir)
            try store.transaction {
                for i in 0..<400 {
                    try store.addJudgment(StoredGeneration(run: RunID(dataset: "medical", seed: 0), step: i, questionID: "q", sample: 0,
                                                           text: String(repeating: "answer ", count: 40)),
                                          judge: "j", Verdict(judge: "j", trait: "evil", score: 1, status: .ok, detail: String(repeating: "d", count: 200), rubricHash: "h"),
                                          cached: false)
                }
            }
        }
        let url = dir.appendingPathComponent(RunStore.fileName)
        var bytes = try Data(contentsOf: url)
        #expect(bytes.count > 40 * 4096)
        let original = bytes
        for i in (10 * 4096)..<(30 * 4096) { bytes[i] = UInt8(truncatingIfNeeded: i &* 31) }
        try bytes.write(to: url)
        for create in [false, true] {
            let err = #expect(throws: PipelineError.self) { _ = try RunStore(run: dir, create: create) }
            #expect(err.flatMap(Self.damagedPath) == url.path, "\(String(describing: err))")
            let text = err?.description ?? ""
            #expect(text.contains("is damaged") && text.contains("restore store.sqlite from a backup")
                    && text.contains("start a new run folder") && text.contains("exports/"), "\(text)")
        }
        let statusError = #expect(throws: PipelineError.self) { _ = try RunStatus.load(run: dir) }
        #expect(statusError.flatMap(Self.damagedPath) == url.path, "status must not read a damaged store")
        // Truncated (a copy cut short): the missing pages are found, not read as an emptier run.
        try Data(original.prefix(original.count / 2)).write(to: url)
        let truncated = #expect(throws: PipelineError.self) { _ = try RunStore(run: dir, create: false) }
        #expect(truncated.flatMap(Self.damagedPath) == url.path, "\(String(describing: truncated))")
        try Data(repeating: 0x41, count: 8192).write(to: url)
        #expect(throws: PipelineError.storeDamaged(path: url.path, reason: "file is not a database")) { _ = try RunStore(run: dir, create: false) }
    }

    static func damagedPath(_ e: PipelineError) -> String? {
        if case .storeDamaged(let path, _) = e { return path }
        return nil
    }

    /// SQLite's "database or disk is full" (SQLITE_FULL, made here with a page limit) is the
    /// documented "cannot write PATH: the disk is full", at creation and on a later commit.
    @Test func aFullDiskIsSaidInWords() throws {
        let dir = Fixtures.temporaryDirectory("pipeline-disk-full")
        defer { try? FileManager.default.removeItem(at: dir); SQLiteDatabase.setTestPageLimit(nil, under: dir.path) }
        let url = dir.appendingPathComponent(RunStore.fileName)
        SQLiteDatabase.setTestPageLimit(2, under: dir.path)
        #expect(throws: PipelineError.unwritable(path: url.path, reason: "the disk is full")) { _ = try RunStore(run: dir) }
        SQLiteDatabase.setTestPageLimit(nil, under: dir.path)
        try? FileManager.default.removeItem(at: url)
        _ = try RunStore(run: dir)  // schema in place
        let pages = try #require(try RunStore(run: dir, create: false).rows("PRAGMA page_count").first?.first?.int)
        SQLiteDatabase.setTestPageLimit(pages + 1, under: dir.path)
        let store = try RunStore(run: dir)
        do {
            try store.transaction {
                for i in 0..<200 {
                    try store.addGeneration(RunID(dataset: "m", seed: 0), step: i, questionID: "q",
                                            Completion(request: 0, sample: 0, tokens: [1], text: String(repeating: "x", count: 2000),
                                                       finishReason: .stop, promptTokens: 1))
                }
            }
            Issue.record("expected a full disk")
        } catch let err as PipelineError {
            #expect(err == .unwritable(path: url.path, reason: "the disk is full"), "\(err)")
            #expect(err.description.hasPrefix("cannot write \(url.path): the disk is full;") && !err.description.contains("INSERT"))
        }
    }

    /// Checkpoints inside the run folder are stored relative to it: a moved folder resumes from
    /// its own checkpoints, and old absolute rows of the run's own checkpoints follow the move.
    @Test func checkpointPathsFollowAMovedRunFolder() throws {
        let dir = Fixtures.temporaryDirectory("pipeline-move")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("a"), moved = dir.appendingPathComponent("b")
        let r = RunID(dataset: "medical", seed: 0)
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        do {
            let store = try RunStore(run: run)
            try store.addCheckpoint(r, step: 0, path: "")
            try store.addCheckpoint(r, step: 2, path: run.appendingPathComponent("checkpoints/medical-seed0/checkpoint-2").path)
            // As versions before relative paths wrote them: absolute, under the old folder.
            try store.db.run("INSERT INTO checkpoints (dataset, seed, step, path) VALUES ('medical', 0, 4, ?1)",
                             [.text("/old/place/checkpoints/medical-seed0/checkpoint-4")])
            #expect(try store.rows("SELECT path FROM checkpoints WHERE step = 2").first?.first?.text == "checkpoints/medical-seed0/checkpoint-2")
        }
        try FileManager.default.moveItem(at: run, to: moved)
        let store = try RunStore(run: moved, create: false)
        #expect(try store.checkpoints(r).map(\.path) == ["", moved.appendingPathComponent("checkpoints/medical-seed0/checkpoint-2").path,
                                                          moved.appendingPathComponent("checkpoints/medical-seed0/checkpoint-4").path])
        // External checkpoints (outside the folder) stay where they are.
        let w = try RunStore(run: moved)
        try w.setMeta("fp.mode", "external")
        try w.addCheckpoint(RunID(dataset: "x", seed: 0), step: 4, path: "/data/other/checkpoints/x-seed0/checkpoint-4")
        #expect(try w.checkpoints(RunID(dataset: "x", seed: 0)).map(\.path) == ["/data/other/checkpoints/x-seed0/checkpoint-4"])
    }

    /// A checkpoint the trainer set aside as wrecked (`checkpoint-N.diverged`, after a resumed
    /// run found its weights diverged) leaves the store; the others stay.
    @Test func setAsideCheckpointsLeaveTheStore() throws {
        let run = Fixtures.temporaryDirectory("pipeline-diverged")
        defer { try? FileManager.default.removeItem(at: run) }
        let r = RunID(dataset: "medical", seed: 0)
        let folder = PipelineRunner.checkpointFolder(run, r)
        for step in [2, 4] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("checkpoint-\(step)"), withIntermediateDirectories: true)
        }
        let store = try RunStore(run: run)
        try store.addCheckpoint(r, step: 0, path: "")
        for step in [2, 4] { try store.addCheckpoint(r, step: step, path: folder.appendingPathComponent("checkpoint-\(step)").path) }
        #expect(try store.forgetSetAsideCheckpoints(r).isEmpty)
        try FileManager.default.moveItem(at: folder.appendingPathComponent("checkpoint-4"), to: folder.appendingPathComponent("checkpoint-4.diverged"))
        #expect(try store.forgetSetAsideCheckpoints(r) == [4])
        #expect(try store.checkpoints(r).map(\.step) == [0, 2])
    }
}
