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

    /// Generates every missing answer, checkpoint by checkpoint. Each group of questions (at
    /// most `max_batch_sequences` samples) is decoded together and committed in one
    /// transaction, so a kill loses at most the group in progress. Returns answers written.
    func generateStage() async throws -> Int {
        let e = experiment, ev = e.evaluation
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
        let perGroup = max(1, e.generation.maxBatchSequences / ev.samples)
        var done = 0
        for (r, step, path, missing) in work {
            try checkCancelled("generate")
            let checkpoint: (any Checkpoint)? = path.isEmpty ? nil : try self.checkpoint(r, step: step, path: path)
            let backend = try backends.backend(for: r)
            let generator: any Generator
            let adapterStart = Date()
            var groupSeconds = 0.0  // commits and progress inside this checkpoint: not model work
            defer { addWork(Date().timeIntervalSince(adapterStart) - groupSeconds) }
            do { generator = try await backend.generator(for: checkpoint) } catch {
                throw PipelineError.stage(stage: "generate", unit: "\(r) step \(step)", reason: "cannot load the checkpoint at \(path): \(error)")
            }
            var start = 0
            while start < missing.count {
                try checkCancelled("generate")
                let group = Array(missing[start..<min(missing.count, start + perGroup)])
                start += group.count
                let requests = group.map {
                    GenerationRequest(prompt: promptIDs[$0.id]!, samples: ev.samples, maxNewTokens: ev.maxNewTokens,
                                      sampling: ev.sampling, seed: ev.seed &+ UInt64(r.seed))
                }
                let t0 = Date()
                let completions = try await generator.generate(requests, onToken: nil)
                let seconds = Date().timeIntervalSince(t0)
                let commitStart = Date()
                defer { groupSeconds += Date().timeIntervalSince(commitStart) }
                try store.transaction {
                    for c in completions { try store.addGeneration(r, step: step, questionID: group[c.request].id, c) }
                    for q in group {
                        try store.finish(stage: "generate", unit: "\(r)/step-\(step)/\(q.id)", items: ev.samples,
                                         seconds: seconds / Double(group.count))
                    }
                }
                done += completions.count
                progress(.stage(name: "generate", done: done, total: total))
                StageHooks.unitDone("generate")
            }
            try await backend.release(checkpoint)
        }
        return done
    }
}
