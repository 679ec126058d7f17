import Foundation
import MisalignJudge
import MisalignKernels
import MisalignPipeline

extension RunReader {
    /// Agreement between every pair of judges per trait over the answers both scored
    /// (`JudgeReport.agreement`); empty with fewer than two judges.
    func agreement() throws(ReportError) -> [JudgeAgreement] {
        guard judges.count >= 2 else { return [] }
        let rows = try q("SELECT dataset, seed, step, question_id, sample, judge, trait, score, status, rubric_sha256 FROM judgments "
                         + "ORDER BY dataset, seed, step, question_id, sample, judge, trait")
        let judgeRows = rows.map { r -> JudgeRow in
            let id = "\(r[0].text ?? "")/\(r[1].int ?? 0)/\(r[2].int ?? 0)/\(r[3].text ?? "")/\(r[4].int ?? 0)"
            let v = Verdict(judge: r[5].text ?? "", trait: r[6].text ?? "", score: r[7].double,
                            status: VerdictStatus(rawValue: r[8].text ?? "") ?? .unparseable, rubricHash: r[9].text ?? "")
            return JudgeRow(answerID: id, questionID: r[3].text ?? "", trait: v.trait, judge: v.judge, verdict: v, cached: false)
        }
        let traits = experiment?.judges.traits ?? Array(Set(judgeRows.map(\.trait))).sorted()
        return JudgeReport.agreement(rows: judgeRows, traits: traits, judges: judges).map(JudgeAgreement.init)
    }

    /// Loss and learning rate per optimizer step, as the trainer logged them to the store, with
    /// the held-out loss at the checkpoints that have one (`heldout_loss`).
    func training(_ id: RunID) throws(ReportError) -> TrainingCurve {
        let rows = try q("SELECT step, loss, lr FROM metrics WHERE dataset = ?1 AND seed = ?2 ORDER BY step", Self.key(id))
        var held: [Int: Double] = [:]
        for r in try q("SELECT step, loss FROM heldout_loss WHERE dataset = ?1 AND seed = ?2", Self.key(id)) { held[r[0].int ?? 0] = r[1].double }
        return TrainingCurve(dataset: id.dataset, seed: id.seed, points: rows.map {
            .init(step: $0[0].int ?? 0, loss: $0[1].double ?? .nan, lr: $0[2].double ?? .nan, heldOutLoss: held[$0[0].int ?? 0])
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
            let steps = try q("SELECT DISTINCT step FROM generations WHERE dataset = ?1 AND seed = ?2 ORDER BY step", Self.key(id)).compactMap { $0[0].int }
            guard let first = steps.first, let last = steps.last else { continue }
            let onset = report.onset(lagSignal)?.consensusStep ?? report.onset(lead)?.consensusStep
            let middle = onset.flatMap { o in steps.first { Double($0) >= o } } ?? steps[steps.count / 2]
            var chosen: [Int] = []
            for s in [first, middle, last] where !chosen.contains(s) { chosen.append(s) }
            for step in chosen {
                let answers = try q("""
                    SELECT g.question_id, g.sample, g.text, (SELECT MAX(j.score) FROM judgments j WHERE j.dataset = g.dataset AND j.seed = g.seed
                        AND j.step = g.step AND j.question_id = g.question_id AND j.sample = g.sample AND j.trait = ?4) AS s
                    FROM generations g WHERE g.dataset = ?1 AND g.seed = ?2 AND g.step = ?3
                    ORDER BY s IS NULL, s DESC, g.question_id, g.sample LIMIT ?5
                    """, Self.key(id) + [.int(Int64(step)), .text(lagSignal), .int(Int64(perCheckpoint))])
                for a in answers {
                    let qid = a[0].text ?? "", sample = a[1].int ?? 0
                    let verdicts = try q("SELECT judge, trait, score FROM judgments WHERE dataset = ?1 AND seed = ?2 AND step = ?3 AND question_id = ?4 AND sample = ?5",
                                         Self.key(id) + [.int(Int64(step)), .text(qid), .int(Int64(sample))])
                    // One judge: its name (often long, with a URL) is in the reproducibility section.
                    let scores = verdicts.map { SampleAnswer.Score(signal: $0[1].text ?? "", score: $0[2].double, judge: judges.count > 1 ? $0[0].text : nil) }
                        .sorted { (rank($0.judge), traitRank($0.signal)) < (rank($1.judge), traitRank($1.signal)) }
                    out.append(SampleAnswer(dataset: id.dataset, seed: id.seed, step: step, questionID: qid, question: texts[qid] ?? qid,
                                            answer: a[2].text ?? "", scores: scores))
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
        let rubrics = try q("SELECT DISTINCT trait, rubric_sha256 FROM judgments ORDER BY trait, rubric_sha256").map { row in
            let name = row[0].text ?? "", sha = row[1].text ?? ""
            let match = known[name].flatMap { $0.sha256 == sha ? $0 : nil } ?? RubricSet.builtin.rubrics[name].flatMap { $0.sha256 == sha ? $0 : nil }
            return Reproducibility.RubricHash(name: match == nil ? name + " (not a known version)" : name, version: match?.version ?? 0, sha256: sha)
        }
        return Reproducibility(configText: configText ?? "", configSource: configPath, versions: versions, rubrics: rubrics)
    }
}
