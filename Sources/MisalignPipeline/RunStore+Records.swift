import Foundation
import MisalignChangePoint
import MisalignGeneration
import MisalignJudge
import MisalignModel

/// One generated answer as stored.
public struct StoredGeneration: Sendable, Equatable {
    public var run: RunID
    public var step: Int
    public var questionID: String
    public var sample: Int
    public var text: String
}

/// One verdict as stored (what aggregation and detection read).
public struct StoredJudgment: Sendable, Equatable {
    public var questionID: String
    public var sample: Int
    public var trait: String
    public var score: Double?
    public var status: VerdictStatus
}

extension RunStore {
    // MARK: runs and checkpoints

    func recordRun(_ r: RunID, totalSteps: Int) throws(PipelineError) {
        try db.run("INSERT INTO runs (dataset, seed, total_steps) VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET total_steps = ?3",
                   [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(totalSteps))])
    }

    func markTrained(_ r: RunID) throws(PipelineError) {
        try db.run("UPDATE runs SET trained = 1 WHERE dataset = ?1 AND seed = ?2", [.text(r.dataset), .int(Int64(r.seed))])
    }

    /// Total planned steps and whether training finished, when the run has started.
    public func runState(_ r: RunID) throws(PipelineError) -> (totalSteps: Int, trained: Bool)? {
        guard let row = try db.query("SELECT total_steps, trained FROM runs WHERE dataset = ?1 AND seed = ?2",
                                     [.text(r.dataset), .int(Int64(r.seed))]).first else { return nil }
        return (row[0].int ?? 0, row[1].int == 1)
    }

    /// The run folder this store belongs to.
    public var runFolder: URL { url.deletingLastPathComponent() }

    /// Records a checkpoint; a path inside the run folder is stored relative to it, so a moved
    /// or copied run folder reads its own checkpoints. Paths outside (external checkpoints) stay
    /// absolute.
    func addCheckpoint(_ r: RunID, step: Int, path: String) throws(PipelineError) {
        let root = runFolder.standardizedFileURL.path + "/"
        let stored = path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
        try db.run("INSERT OR IGNORE INTO checkpoints (dataset, seed, step, path) VALUES (?1, ?2, ?3, ?4)",
                   [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(step)), .text(stored)])
    }

    /// Forgets checkpoints whose folder the trainer set aside as `checkpoint-<step>.diverged`
    /// (saved from weights it then found wrecked), so no later stage reads a missing folder.
    /// Returns the steps forgotten.
    @discardableResult
    func forgetSetAsideCheckpoints(_ r: RunID) throws(PipelineError) -> [Int] {
        let fm = FileManager.default
        let gone = try checkpoints(r).filter { !$0.path.isEmpty && !fm.fileExists(atPath: $0.path) && fm.fileExists(atPath: $0.path + ".diverged") }
        for c in gone {
            try db.run("DELETE FROM checkpoints WHERE dataset = ?1 AND seed = ?2 AND step = ?3",
                       [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(c.step))])
            try db.run("DELETE FROM heldout_loss WHERE dataset = ?1 AND seed = ?2 AND step = ?3",
                       [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(c.step))])
        }
        return gone.map(\.step)
    }

    /// Registered checkpoints of a run, by step (step 0 is the base model, path ""), with
    /// absolute paths: relative ones resolved against this run folder, and absolute ones that
    /// older versions stored for the run's own checkpoints (`.../checkpoints/DATASET-seedN/
    /// checkpoint-K`) moved to this run folder, so a moved run resumes and a copy never reads
    /// the original's checkpoints.
    public func checkpoints(_ r: RunID) throws(PipelineError) -> [(step: Int, path: String)] {
        // Only a run that trains here has checkpoints of its own; external ones stay as given.
        var mode = try meta("fp.mode")
        if mode == nil { mode = try meta("fingerprint.mode") }
        let trained = mode != "external"
        let rows = try db.query("SELECT step, path FROM checkpoints WHERE dataset = ?1 AND seed = ?2 ORDER BY step",
                            [.text(r.dataset), .int(Int64(r.seed))])
        return rows.map { ($0[0].int ?? 0, resolve($0[1].text ?? "", r, step: $0[0].int ?? 0, trainedHere: trained)) }
    }

    /// The absolute path of a stored checkpoint path (see `checkpoints`).
    func resolve(_ stored: String, _ r: RunID, step: Int, trainedHere: Bool) -> String {
        if stored.isEmpty { return "" }
        let root = runFolder.standardizedFileURL
        guard stored.hasPrefix("/") else { return root.appendingPathComponent(stored).path }
        let own = "checkpoints/\(r.dataset)-seed\(r.seed)/checkpoint-\(step)"
        if trainedHere, stored.hasSuffix("/" + own) { return root.appendingPathComponent(own).path }
        return stored
    }

    func addMetric(_ r: RunID, _ m: StepMetrics) throws(PipelineError) {
        try db.run("INSERT OR REPLACE INTO metrics (dataset, seed, step, loss, lr, grad_norm, tokens, seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                   [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(m.step)), .double(m.loss), .double(m.lr), .double(m.gradNorm),
                    .int(Int64(m.tokens)), .double(m.seconds)])
    }

    // MARK: generations

    /// Question ids with stored answers at (run, step).
    func generatedQuestions(_ r: RunID, step: Int) throws(PipelineError) -> Set<String> {
        Set(try db.query("SELECT DISTINCT question_id FROM generations WHERE dataset = ?1 AND seed = ?2 AND step = ?3",
                         [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(step))]).compactMap { $0[0].text })
    }

    func addGeneration(_ r: RunID, step: Int, questionID: String, _ c: Completion) throws(PipelineError) {
        try db.run("""
            INSERT INTO generations (dataset, seed, step, question_id, sample, text, finish_reason, prompt_tokens, completion_tokens)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            """, [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(step)), .text(questionID), .int(Int64(c.sample)), .text(c.text),
                  .text(c.finishReason.rawValue), .int(Int64(c.promptTokens)), .int(Int64(c.completionTokens))])
    }

    /// Answers that lack a verdict from `judge` on `trait`; with `questions`, only answers to
    /// those question ids (a trait with its own question set is never asked about others).
    func unjudged(judge: String, trait: String, questions: Set<String>? = nil) throws(PipelineError) -> [StoredGeneration] {
        let all = try db.query("""
            SELECT g.dataset, g.seed, g.step, g.question_id, g.sample, g.text FROM generations g
            WHERE NOT EXISTS (SELECT 1 FROM judgments j WHERE j.dataset = g.dataset AND j.seed = g.seed AND j.step = g.step
                AND j.question_id = g.question_id AND j.sample = g.sample AND j.judge = ?1 AND j.trait = ?2)
            ORDER BY g.dataset, g.seed, g.step, g.question_id, g.sample
            """, [.text(judge), .text(trait)]).map {
            StoredGeneration(run: RunID(dataset: $0[0].text ?? "", seed: $0[1].int ?? 0), step: $0[2].int ?? 0,
                             questionID: $0[3].text ?? "", sample: $0[4].int ?? 0, text: $0[5].text ?? "")
        }
        guard let questions else { return all }
        return all.filter { questions.contains($0.questionID) }
    }

    // MARK: judgments

    func addJudgment(_ g: StoredGeneration, judge: String, _ v: Verdict, cached: Bool) throws(PipelineError) {
        try db.run("""
            INSERT OR REPLACE INTO judgments (dataset, seed, step, question_id, sample, judge, trait, score, status, detail,
                rubric_sha256, input_tokens, output_tokens, latency, cached)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
            """, [.text(g.run.dataset), .int(Int64(g.run.seed)), .int(Int64(g.step)), .text(g.questionID), .int(Int64(g.sample)),
                  .text(judge), .text(v.trait), v.score.map { .double($0) } ?? .null, .text(v.status.rawValue), .text(v.detail),
                  .text(v.rubricHash), .int(Int64(v.inputTokens)), .int(Int64(v.outputTokens)), .double(v.latency), .int(cached ? 1 : 0)])
    }

    /// Every verdict of `judge` at (run, step).
    func judgments(_ r: RunID, step: Int, judge: String) throws(PipelineError) -> [StoredJudgment] {
        try db.query("SELECT question_id, sample, trait, score, status FROM judgments WHERE dataset = ?1 AND seed = ?2 AND step = ?3 AND judge = ?4",
                     [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(step)), .text(judge)]).map {
            StoredJudgment(questionID: $0[0].text ?? "", sample: $0[1].int ?? 0, trait: $0[2].text ?? "", score: $0[3].double,
                           status: VerdictStatus(rawValue: $0[4].text ?? "") ?? .unparseable)
        }
    }

    /// Scored verdicts of `judge` over a whole run, as change-point records.
    func scoreRecords(_ r: RunID, judge: String, traits: [String]) throws(PipelineError) -> [ScoreRecord] {
        try db.query("""
            SELECT trait, step, question_id, sample, score FROM judgments
            WHERE dataset = ?1 AND seed = ?2 AND judge = ?3 AND status = 'ok' AND score IS NOT NULL
            ORDER BY trait, step, question_id, sample
            """, [.text(r.dataset), .int(Int64(r.seed)), .text(judge)]).compactMap { row in
            guard let t = row[0].text, traits.contains(t) else { return nil }
            return ScoreRecord(signal: t, step: row[1].int ?? 0, questionID: row[2].text ?? "", sample: row[3].int ?? 0,
                               score: row[4].double ?? 0, dataset: r.dataset, seed: r.seed)
        }
    }

    /// Tokens billed per judge (fresh calls only).
    public func judgeTokens() throws(PipelineError) -> [String: (calls: Int, input: Int, output: Int)] {
        var out: [String: (Int, Int, Int)] = [:]
        for row in try db.query("SELECT judge, COUNT(*), SUM(input_tokens), SUM(output_tokens) FROM judgments WHERE cached = 0 GROUP BY judge") {
            out[row[0].text ?? ""] = (row[1].int ?? 0, row[2].int ?? 0, row[3].int ?? 0)
        }
        return out
    }
}
