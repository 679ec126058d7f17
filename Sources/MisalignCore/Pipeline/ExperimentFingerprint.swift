import Foundation

extension Experiment {
    /// What must not change across calls on one run directory, by name, as readable text so
    /// an error can say what changed. Adding datasets, seeds or judges is allowed (they add
    /// units); changing what an existing unit means is not.
    func fingerprints() throws -> [(String, String)] {
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
        return [("model", model.path), ("mode", externalCheckpoints.isEmpty ? "train" : "external"), ("training", trainingText),
                ("evaluation", evalText), ("rubrics", rubricText), ("analysis", analysis)]
    }
}
