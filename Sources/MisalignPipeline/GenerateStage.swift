import Foundation
import MisalignGeneration
import MisalignJudge
import MisalignModel
import MisalignTokenizer

extension PipelineRunner {
    /// Prompt token ids of each question, rendered with the chat template.
    func prompts(_ tokenizer: BPETokenizer) throws -> [String: [Int32]] {
        let policy: SystemPromptPolicy = experiment.evaluation.systemPrompt.map { $0.isEmpty ? .none : .custom($0) } ?? .templateDefault
        var out: [String: [Int32]] = [:]
        for q in experiment.evaluation.questions {
            // A question file's own system prompt (EM's `system:`) wins over evaluation.system_prompt.
            out[q.id] = try tokenizer.applyChatTemplate([ChatMessage(role: "user", content: q.text)], addGenerationPrompt: true,
                                                         systemPrompt: q.system.map { .custom($0) } ?? policy).ids.map { Int32($0) }
        }
        return out
    }

    /// Generates every missing answer, checkpoint by checkpoint: one generator call per
    /// checkpoint over all its missing questions, at most `max_batch_sequences` samples decoding
    /// at once (the local backend admits the next question as samples end; a remote one runs
    /// groups). Each question is committed as soon as all its samples are done (questions that
    /// end together in one transaction), so a kill loses at most the questions in progress.
    /// Returns answers written.
    func generateStage() async throws -> Int {
        let e = experiment, ev = e.evaluation
        try checkProjectionsCover()
        // Work list first, so a complete run never loads the model.
        var work: [(RunID, Int, String, [EvaluationQuestion])] = []
        for r in e.runs {
            for ck in try store.checkpoints(r) {
                let have = try store.generatedQuestions(r, step: ck.step)
                let missing = ev.questions.filter { !have.contains($0.id) }
                if !missing.isEmpty { work.append((r, ck.step, ck.path, missing)) }
            }
        }
        let total = work.reduce(0) { $0 + $1.3.count * ev.samples }
        guard total > 0 else { return 0 }
        let loadStart = Date()
        let backends = try PipelineBackends(e, override: backendOverride, tagPrefix: try adapterTagPrefix(), transport: nil)
        addWork(Date().timeIntervalSince(loadStart))
        note("generate: \(total) answers with the \(backends.name) backend")
        let promptIDs = try prompts(backends.tokenizer)
        let vectors = try traitVectors(backends)
        let tally = GenerateTally()
        for (r, step, path, missing) in work {
            try checkCancelled("generate")
            let checkpoint: (any Checkpoint)? = path.isEmpty ? nil : try self.checkpoint(r, step: step, path: path)
            let backend = try backends.backend(for: r)
            let generator: any Generator
            let adapterStart = Date()
            defer { addWork(Date().timeIntervalSince(adapterStart) - tally.takeCommitSeconds()) }
            do { generator = try await backend.generator(for: checkpoint) } catch {
                throw PipelineError.stage(stage: "generate", unit: "\(r) step \(step)", reason: "cannot load the checkpoint at \(path): \(error)")
            }
            let requests = missing.map {
                GenerationRequest(prompt: promptIDs[$0.id]!, samples: ev.samples, maxNewTokens: ev.maxNewTokens,
                                  sampling: ev.sampling, seed: ev.seed &+ UInt64(r.seed), hiddenStateLayers: vectors?.layers ?? [])
            }
            tally.startCall()
            // Called on the generator's thread while this task awaits it: the store and the
            // progress callback see one caller at a time. Questions that end together (a
            // remote backend's group) are committed together.
            _ = try await generator.generate(requests, maxLive: e.generation.maxBatchSequences, onToken: nil) { finished in
                let seconds = tally.sinceLast() / Double(finished.count)
                let commitStart = Date()
                try self.store.transaction {
                    for (i, completions) in finished {
                        let q = missing[i]
                        for c in completions {
                            try self.store.addGeneration(r, step: step, questionID: q.id, c)
                            if let vectors {
                                guard let a = c.activations else {
                                    throw PipelineError.stage(stage: "generate", unit: "\(r) step \(step)",
                                                              reason: "the generator returned no hidden states for the projections (activations:); "
                                                                  + "only the in-process generator records them")
                                }
                                try self.store.addProjections(r, step: step, questionID: q.id, sample: c.sample, vectors.rows(a))
                            }
                        }
                        try self.store.finish(stage: "generate", unit: "\(r)/step-\(step)/\(q.id)", items: completions.count, seconds: seconds)
                    }
                }
                let done = tally.add(answers: finished.reduce(0) { $0 + $1.completions.count }, commitSeconds: Date().timeIntervalSince(commitStart))
                self.progress(.stage(name: "generate", done: done, total: total))
                StageHooks.unitDone("generate")
                try self.checkCancelled("generate")
            }
            try await backend.release(checkpoint)
        }
        return tally.answers
    }
}

extension PipelineRunner {
    /// The trait vectors `activations:` names, read and checked against the generating model;
    /// nil when the section is absent. Answers stored before a vector was named have no
    /// projection onto it, which is refused here rather than leaving holes in its curve.
    func traitVectors(_ backends: PipelineBackends) throws -> LoadedTraitVectors? {
        let a = experiment.activations
        guard a.isEnabled else { return nil }
        guard let config = backends.localModelConfig else {
            throw PipelineError.stage(stage: "generate", unit: "activations",
                                      reason: "projections need the in-process generator (generation.backend: local); \(backends.name) cannot record hidden states")
        }
        let loaded = try LoadedTraitVectors(a, config: config)
        for v in loaded.vectors { try store.setProjectionLayer(trait: v.trait, v.vector.layer!) }
        return loaded
    }

    /// Refuses a run whose stored answers lack projections onto a named vector.
    func checkProjectionsCover() throws {
        for (trait, _) in experiment.activations.vectors {
            let n = try store.unprojectedAnswerCount(trait: trait)
            if n > 0 {
                throw PipelineError.stage(stage: "generate", unit: "activations",
                                          reason: "\(n) stored answers were generated before activations.vectors named \(trait), so they have no projection "
                                              + "onto it and its curve would have holes; projections are recorded while answers are generated. "
                                              + "Use a new output folder for a run with \(ActivationSettings.signal(trait)), or remove \(trait) from activations.vectors")
            }
        }
    }
}

/// The generate stage's counts, shared with the per-question callback (which runs on the
/// generator's thread): answers written, time spent committing (not model work), and when the
/// last question ended (each question is timed from the previous one's end).
// Unchecked Sendable: every stored property is read and written only under `lock`.
final class GenerateTally: @unchecked Sendable {
    private let lock = NSLock()
    private var written = 0, commitSeconds = 0.0, last = Date()

    var answers: Int { lock.withLock { written } }
    func startCall() { lock.withLock { last = Date() } }
    /// Seconds since the call started or the previous question was committed.
    func sinceLast() -> Double { lock.withLock { Date().timeIntervalSince(last) } }
    /// Counts a committed question; the next one is timed from now.
    func add(answers n: Int, commitSeconds s: Double) -> Int {
        lock.withLock { written += n; commitSeconds += s; last = Date(); return written }
    }
    func takeCommitSeconds() -> Double { lock.withLock { defer { commitSeconds = 0 }; return commitSeconds } }
}
