import Foundation
import MisalignJudge
import MisalignKernels
import MisalignPipeline

extension RunReader {
    /// Agreement between every pair of judges per trait over the answers both scored
    /// (`JudgeReport.agreement`); empty with fewer than two judges.
    func agreement() throws(ReportError) -> [JudgeAgreement] {
        guard judges.count >= 2 else { return [] }
        let rows = try read { s throws(PipelineError) in try s.verdictRows() }
        let judgeRows = rows.map { r -> JudgeRow in
            let id = "\(r.run.dataset)/\(r.run.seed)/\(r.step)/\(r.questionID)/\(r.sample)"
            let v = Verdict(judge: r.judge, trait: r.trait, score: r.score, status: r.status, rubricHash: r.rubricSHA256)
            return JudgeRow(answerID: id, questionID: r.questionID, trait: v.trait, judge: v.judge, verdict: v, cached: false)
        }
        let traits = experiment?.judges.traits ?? Array(Set(judgeRows.map(\.trait))).sorted()
        return JudgeReport.agreement(rows: judgeRows, traits: traits, judges: judges).map(JudgeAgreement.init)
    }

    /// Loss and learning rate per optimizer step, as the trainer logged them to the store, with
    /// the held-out loss at the checkpoints that have one (`heldout_loss`).
    func training(_ id: RunID) throws(ReportError) -> TrainingCurve {
        let rows = try read { s throws(PipelineError) in try s.metrics(id) }
        var held: [Int: Double] = [:]
        for h in try read({ s throws(PipelineError) in try s.heldOutLosses(id) }) { held[h.step] = h.loss.loss }
        return TrainingCurve(dataset: id.dataset, seed: id.seed, points: rows.map {
            .init(step: $0.step, loss: $0.loss ?? .nan, lr: $0.lr ?? .nan, heldOutLoss: held[$0.step])
        })
    }

    /// Question texts by id: the config's questions, then the shipped set.
    func questionTexts() -> [String: String] {
        var out: [String: String] = [:]
        for q in EvaluationQuestions.all { out[q.id] = q.text }
        for q in experiment?.evaluation.questions ?? [] { out[q.id] = q.text }
        return out
    }

    /// For the first seed of each dataset: the answers with the highest lag-signal score at the
    /// first checkpoint, the checkpoint at (or just after) the lag signal's consensus onset (the
    /// lead signal's, or the middle one, when it has none) and the last, with every judge's scores.
    func samples(runs: [RunID], reports: [RunReport], perCheckpoint: Int) throws(ReportError) -> [SampleAnswer] {
        guard perCheckpoint > 0 else { return [] }
        let texts = questionTexts()
        var out: [SampleAnswer] = []
        var seen = Set<String>()
        for (id, report) in zip(runs, reports) where seen.insert(id.dataset).inserted {
            let steps = try read { s throws(PipelineError) in try s.generationSteps(id) }
            guard let first = steps.first, let last = steps.last else { continue }
            let onset = report.onset(lagSignal)?.consensusStep ?? report.onset(lead)?.consensusStep
            let middle = onset.flatMap { o in steps.first { Double($0) >= o } } ?? steps[steps.count / 2]
            var chosen: [Int] = []
            for s in [first, middle, last] where !chosen.contains(s) { chosen.append(s) }
            for step in chosen {
                let answers = try read { s throws(PipelineError) in try s.topAnswers(id, step: step, trait: lagSignal, limit: perCheckpoint) }
                for a in answers {
                    let qid = a.questionID
                    let verdicts = try read { s throws(PipelineError) in try s.verdictRows(id, step: step, questionID: qid, sample: a.sample) }
                    // One judge: its name (often long, with a URL) is in the reproducibility section.
                    let scores = verdicts.map { SampleAnswer.Score(signal: $0.trait, score: $0.score, judge: judges.count > 1 ? $0.judge : nil) }
                        .sorted { (rank($0.judge), traitRank($0.signal)) < (rank($1.judge), traitRank($1.signal)) }
                    out.append(SampleAnswer(dataset: id.dataset, seed: id.seed, step: step, questionID: qid, question: texts[qid] ?? qid,
                                            answer: a.text, scores: scores))
                }
            }
        }
        return out
    }

    private func rank(_ judge: String?) -> Int { judge.flatMap { judges.firstIndex(of: $0) } ?? .max }
    private func traitRank(_ t: String) -> Int { (experiment?.judges.traits ?? ["evil", "hallucination", "coherence"]).firstIndex(of: t) ?? .max }

    /// The config text recorded at the run's last call, versions, and the SHA-256 of every
    /// rubric the stored verdicts were made with.
    func reproducibility() throws(ReportError) -> Reproducibility {
        let configText = (try? store.meta("config_text")) ?? nil
        let configPath = (try? store.meta("config_path")) ?? nil
        var versions: [Reproducibility.Entry] = [.init(name: "misalign (this report)", value: MisalignVersion.string),
                                                 .init(name: "kernels", value: KernelInfo.isa)]
        if let v = try? store.meta("schema_version") { versions.append(.init(name: "run store schema", value: v)) }
        if let e = experiment {
            versions.append(.init(name: "base model", value: e.model.path))
            versions.append(.init(name: "generation", value: e.generation.backend == .local ? "local" : "vllm"))
        }
        if !judges.isEmpty { versions.append(.init(name: "judges", value: judges.joined(separator: ", "))) }
        if let judge { versions.append(.init(name: "detection judge", value: judge)) }
        // The rubrics the config judges with: trait files, rubric files, overrides, built-ins.
        let known = experiment.flatMap { try? $0.judges.resolvedRubrics() } ?? RubricSet.builtin.rubrics
        let rubrics = try read { s throws(PipelineError) in try s.rubricHashes() }.map { row in
            let name = row.trait, sha = row.sha256
            let match = known[name].flatMap { $0.sha256 == sha ? $0 : nil } ?? RubricSet.builtin.rubrics[name].flatMap { $0.sha256 == sha ? $0 : nil }
            return Reproducibility.RubricHash(name: match == nil ? name + " (not a known version)" : name, version: match?.version ?? 0, sha256: sha)
        }
        return Reproducibility(configText: configText ?? "", configSource: configPath, versions: versions, rubrics: rubrics)
    }
}
