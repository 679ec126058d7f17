import Foundation
import MisalignIO
import MisalignJudge
import MisalignModel

extension Experiment {
    /// The fingerprint format of stores written before content was fingerprinted (the model
    /// and data by path, each section as one line of text); kept to check such stores once
    /// before they are given `fingerprintFields()`. The last entry is the analysis settings,
    /// which may change (their results are recomputed).
    func legacyFingerprints() throws -> [(String, String)] {
        let t = training, l = t.lora
        let trainingText = "r\(l.rank) alpha\(l.alpha) rslora \(l.useRSLoRA) dropout \(l.dropout) targets \(l.targets.sorted().map(\.rawValue).joined(separator: "+")) "
            + "layers \(l.layers.map { $0.map(String.init).joined(separator: "+") } ?? "all") lr \(t.learningRate) \(t.schedule.rawValue) "
            + "warmup \(t.warmupSteps) wd \(t.weightDecay) clip \(t.maxGradNorm) batch \(t.batchSize)x\(t.gradientAccumulation) "
            + "epochs \(t.epochs) max_steps \(t.maxSteps.map(String.init) ?? "-") max_length \(t.maxLength) every \(t.saveEvery)"
        let ev = evaluation, s = ev.sampling
        let questions = SHA256.hex(ev.questions.map { "\($0.id)\u{1F}\($0.text)" }.joined(separator: "\u{1E}"))
        let evalText = "questions \(questions.prefix(16)) samples \(ev.samples) max_new_tokens \(ev.maxNewTokens) "
            + "temperature \(s.temperature) top_p \(s.topP) top_k \(s.topK) min_p \(s.minP) rep \(s.repetitionPenalty) "
            + "seed \(ev.seed) base \(ev.includeBase) system \(ev.systemPrompt.map { SHA256.hex($0).prefix(12) } ?? "default")"
            // bf16 products change the answers; f32 (the default) adds nothing, so runs made
            // before the setting existed still resume.
            + (generation.precision == .f32 ? "" : " precision \(generation.precision.rawValue)")
        let rubrics = try judges.rubrics.map { try RubricSet.loading(overrides: $0) } ?? .builtin
        let rubricText = judges.traits.sorted().map { "\($0) \(rubrics[$0]?.sha256.prefix(12) ?? "-")" }.joined(separator: ", ")
        let a = aggregation, d = detection
        let analysis = "confidence \(a.confidence) threshold \(a.threshold) filter \(a.coherenceFilter.rawValue) \(a.coherenceTrait)>=\(a.coherenceMin) "
            + "misaligned \(a.misalignedTrait)>\(a.misalignedAbove) coherent>\(a.coherentAbove); methods \(d.methods.joined(separator: "+")) "
            + "resamples \(d.resamples) seed \(d.seed) conf \(d.confidence) scale \(d.scale) \(d.lead)->\(d.lag) min_agreeing \(d.minAgreeing.map(String.init) ?? "-") "
            + "judge \(d.judge ?? "-") directions \(d.directions.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.rawValue)" }.joined(separator: ","))"
            + d.fingerprintSuffix
        return [("model", model.path), ("mode", externalCheckpoints.isEmpty ? "train" : "external"), ("training", trainingText),
                ("evaluation", evalText), ("rubrics", rubricText), ("analysis", analysis)]
    }
}

extension Experiment {
    /// What must not change across calls on one run directory, one field per entry
    /// (`training.lr`, `datasets.medical`, `model.weights`, ...) so a refusal names the one
    /// field that changed with its old and new value. The model and data are fingerprinted by
    /// content (`ContentFingerprint`), not by path: a moved model folder is the same model, an
    /// edited dataset is not. Adding datasets, seeds or judges is allowed (they add fields or
    /// units); changing what an existing unit means is not.
    func fingerprintFields() throws -> [(String, String)] {
        var out: [(String, String)] = [("mode", externalCheckpoints.isEmpty ? "train" : "external")]
        out += ContentFingerprint.model(model, tokenizer: tokenizer ?? model)
        for d in datasets { out.append(("datasets.\(d.name)", try ContentFingerprint.dataset(d.path))) }
        if externalCheckpoints.isEmpty {
            // One record of the training settings (`TrainingSettingKey.all`), as `training.<key>`.
            out += TrainingOptions(settings: training, threads: threads, skipInvalid: skipInvalid).experimentRecord()
        }
        // The questions (the section's structure), then every setting that changes the
        // answers, from the evaluation and generation tables (`SettingEffect.answers`).
        let ev = evaluation
        out.append(("evaluation.questions", String(SHA256.hex(ev.questions.map { "\($0.id)\u{1F}\($0.text)" + ($0.system.map { "\u{1F}\($0)" } ?? "") }.joined(separator: "\u{1E}")).prefix(16))
                    + " (\(ev.questions.count) questions)"))
        out += ev.record([.answers]) + generation.record([.answers])
        let rubrics = try judges.resolvedRubrics()
        out.append(("judges.traits", judges.traits.sorted().joined(separator: ",")))
        for t in judges.traits.sorted() { out.append(("rubrics.\(t)", String(rubrics[t]?.sha256.prefix(12) ?? "-"))) }
        // Which answers each trait judges (only with a `traits:` section, so older stores keep
        // their fields): a changed set would leave verdicts on the old set's answers.
        for t in judges.traits.sorted() {
            guard let trait = judges.traitSettings[t] else { continue }
            out.append(("traits.\(t).questions", trait.questionIDs.map { String(SHA256.hex($0.joined(separator: "\u{1E}")).prefix(16)) + " (\($0.count) questions)" }
                        ?? "every answer"))
        }
        // The vectors and layers projected on (only when on, so other stores keep their fields):
        // stored projections are onto these.
        for (trait, url) in activations.vectors {
            let digest: String
            do { digest = SHA256.hex(bytes: Array(try Data(contentsOf: url))) } catch {
                throw PipelineError.config(file: url.path, key: "activations.vectors.\(trait)", line: nil, reason: "cannot read the vector file: \(error.localizedDescription)")
            }
            out.append(("activations.vectors.\(trait)", String(digest.prefix(16))))
        }
        if activations.isEnabled { out.append(("activations.layers", activations.layers.map(String.init).joined(separator: ","))) }
        return out
    }
}
