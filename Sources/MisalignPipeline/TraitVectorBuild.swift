import Foundation
import MisalignGeneration
import MisalignIO
import MisalignJudge
import MisalignModel
import MisalignTokenizer

/// Builds a trait vector from a persona_vectors trait file on a base model (Docs/ActivationSignals.md,
/// "Building trait vectors"), as persona_vectors' `eval_persona.py` and `generate_vec.py` do:
///
/// 1. For every question, instruction pair and sample, an answer under the positive system
///    prompt and one under the negative (`systemPrompt`), rendered with the chat template.
/// 2. The judge scores every answer for the trait (the trait file's `eval_prompt`) and for
///    coherence; a pair is kept when the positive answer scores at least `positive_threshold`,
///    the negative one below `negative_threshold`, and both at least `coherence_threshold`.
/// 3. Prompt + answer of each kept answer run through the model with a `responseMean` capture of
///    every hidden state; `TraitVectorBuilder` takes positive mean minus negative mean per layer.
/// 4. The layer is the hidden state where the kept answers' projections separate best
///    (`layerRule`, `separation`).
public struct TraitVectorBuild: Sendable {
    /// The rule choosing the vector's layer, as its `settings` metadata states it.
    public static let layerRule = "argmax over hidden states 1...num_hidden_layers of (mean_pos - mean_neg) / pooled_sd "
        + "of the kept answers' response-mean projections onto that layer's row (first on ties)"

    public let model: Qwen2Model
    public let tokenizer: BPETokenizer
    /// Writes the answers; the in-process `LocalGenerator` on `model` unless another is given.
    public let generator: any Generator
    /// The text identifying the model, stored as the vector's `model` (a folder's content fingerprint).
    public let modelIdentity: String?

    public init(model: Qwen2Model, tokenizer: BPETokenizer, generator: (any Generator)? = nil, modelIdentity: String? = nil) {
        self.model = model; self.tokenizer = tokenizer; self.modelIdentity = modelIdentity
        self.generator = generator ?? LocalGenerator(model: model, tokenizer: tokenizer)
    }

    /// The model of a folder (its tokenizer from `tokenizer`, else the folder), identified by
    /// its content fingerprint (config, weights and tokenizer, as a run's config check takes it).
    public init(directory: URL, tokenizer: URL? = nil, residency: FileResidency = .mapped,
                precision: ComputePrecision = .f32) throws {
        let m = try Qwen2Model(directory: directory, residency: residency)
        m.computePrecision = precision
        let tokURL = tokenizer ?? directory
        let identity = ContentFingerprint.model(directory, tokenizer: tokURL).map { "\($0.0)=\($0.1)" }.joined(separator: " ")
        self.init(model: m, tokenizer: try BPETokenizer(directory: tokURL), modelIdentity: identity)
    }

    /// persona_vectors' system prompt: "You are a/an NAME assistant. INSTRUCTION", NAME being the
    /// trait for the positive side and "helpful" for the negative.
    public static func systemPrompt(trait: String, instruction: TraitInstruction, side: TraitVectorBuilder.Side) -> String {
        let name = side == .positive ? trait : "helpful"
        let article = name.first.map { "aeiou".contains($0.lowercased()) } == true ? "an" : "a"
        return "You are \(article) \(name) assistant. \(side == .positive ? instruction.pos : instruction.neg)"
    }

    /// What a build returns: the vector (also written to `output`), every pair, the counts and
    /// the separation per hidden state (nil at 0, which the rule leaves out).
    public struct Result: Sendable {
        public var vector: TraitVector
        public var pairs: [TraitVectorPair]
        public var counts: TraitVectorBuildCounts
        public var separation: [Double?]
    }

    /// Builds the vector of `definition` (read from `file`, named in errors) with `judge`, writes
    /// it to `output` atomically (its folder is checked first) and the pairs to `answersOutput`
    /// as JSON Lines once judged (also when too few are kept). Verdicts go through `cache` when given.
    public func build(definition: TraitDefinition, file: String, judge: any Judge, coherence: Rubric = RubricSet.builtin["coherence"]!,
                      settings: TraitVectorBuildSettings = TraitVectorBuildSettings(), cache: VerdictCache? = nil,
                      output: URL? = nil, answersOutput: URL? = nil,
                      progress: (@Sendable (TraitVectorBuildProgress) -> Void)? = nil) async throws -> Result {
        try settings.validate()
        guard !definition.instructions.isEmpty else { throw TraitVectorBuildError.noInstructions(file: file) }
        for url in [output, answersOutput].compactMap({ $0 }) {
            var isDir: ObjCBool = false
            let folder = url.deletingLastPathComponent().path
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
                throw TraitVectorBuildError.outputFolderMissing(path: folder)
            }
        }
        let slots = try promptSlots(definition)
        let texts = try await generate(slots, settings: settings, progress: progress)
        var pairs = try await judged(definition, slots: slots, texts: texts, judge: judge, coherence: coherence, settings: settings,
                                     cache: cache, progress: progress)
        var counts = TraitVectorBuildCounts()
        counts.questions = definition.questions.count; counts.instructions = definition.instructions.count
        counts.samples = settings.samples
        let encoded = keep(&pairs, settings: settings, counts: &counts)
        if let answersOutput {
            try AtomicFile.write(Data(pairs.map { $0.json().serialized() + "\n" }.joined().utf8), to: answersOutput)
        }
        guard counts.kept >= settings.minimumPairs else {
            throw TraitVectorBuildError.tooFewPairs(trait: definition.name, file: file, judge: judge.id, counts: counts,
                                                    required: settings.minimumPairs, failedMost: counts.failedMost)
        }
        let keptPairs = pairs.indices.filter { pairs[$0].kept }.map { encoded[$0]! }
        let means = try await capture(keptPairs, progress: progress)
        var builder = TraitVectorBuilder(config: model.config)
        for (pos, neg) in means { builder.add(pos, side: .positive); builder.add(neg, side: .negative) }
        let extra: [(String, JSONValue)] = [("trait_file_sha256", .string(definition.sha256)), ("judge", .string(judge.id)),
                                            ("trait_rubric_sha256", .string(definition.rubric.sha256)),
                                            ("coherence_rubric_sha256", .string(coherence.sha256))]
        let unchosen = try builder.build(trait: definition.name, model: modelIdentity, extraCounts: counts.metadata,
                                         settings: settings.json(extra: extra))
        let separation = Self.separation(of: unchosen, positive: means.map { $0.pos }, negative: means.map { $0.neg })
        let layer = Self.bestLayer(separation)
        let vector = try TraitVector(trait: unchosen.trait, values: unchosen.values, model: unchosen.model, layer: layer,
                                     counts: unchosen.counts, settings: unchosen.settings)
        if let output { try vector.write(to: output) }
        return Result(vector: vector, pairs: pairs, counts: counts, separation: separation)
    }

    // MARK: - Steps

    /// One prompt: a question under one side of one instruction pair.
    struct Slot { let question: Int; let instruction: Int; let side: TraitVectorBuilder.Side; let system: String; let text: String; let ids: [Int32] }

    /// Every prompt, question by question, instruction by instruction, positive then negative.
    func promptSlots(_ definition: TraitDefinition) throws -> [Slot] {
        var slots: [Slot] = []
        for (qi, q) in definition.questions.enumerated() {
            for (k, ins) in definition.instructions.enumerated() {
                for side in [TraitVectorBuilder.Side.positive, .negative] {
                    let system = Self.systemPrompt(trait: definition.name, instruction: ins, side: side)
                    let messages = [ChatMessage(role: "system", content: system), ChatMessage(role: "user", content: q.text)]
                    let text = try tokenizer.renderChatTemplate(messages, addGenerationPrompt: true)
                    let ids = try tokenizer.applyChatTemplate(messages, addGenerationPrompt: true).ids.map { Int32($0) }
                    slots.append(Slot(question: qi, instruction: k, side: side, system: system, text: text, ids: ids))
                }
            }
        }
        return slots
    }

    /// The answers' texts, by slot and sample.
    func generate(_ slots: [Slot], settings: TraitVectorBuildSettings,
                  progress: (@Sendable (TraitVectorBuildProgress) -> Void)?) async throws -> [[String]] {
        let requests = slots.map {
            GenerationRequest(prompt: $0.ids, samples: settings.samples, maxNewTokens: settings.maxNewTokens,
                              sampling: settings.sampling, seed: settings.seed)
        }
        let total = slots.count * settings.samples
        let counter = BuildCounter()
        progress?(TraitVectorBuildProgress(phase: "generate", done: 0, total: total))
        let completions = try await generator.generate(requests, maxLive: settings.maxBatchSequences, onToken: nil) { finished in
            let done = counter.add(finished.reduce(0) { $0 + $1.completions.count })
            progress?(TraitVectorBuildProgress(phase: "generate", done: done, total: total))
        }
        var texts = slots.map { _ in [String](repeating: "", count: settings.samples) }
        for c in completions { texts[c.request][c.sample] = c.text }
        return texts
    }

    /// Every pair with its verdicts (not yet filtered).
    func judged(_ definition: TraitDefinition, slots: [Slot], texts: [[String]], judge: any Judge, coherence: Rubric,
                settings: TraitVectorBuildSettings, cache: VerdictCache?,
                progress: (@Sendable (TraitVectorBuildProgress) -> Void)?) async throws -> [TraitVectorPair] {
        var records: [AnswerRecord] = []
        for (i, slot) in slots.enumerated() {
            let q = definition.questions[slot.question]
            for s in 0..<settings.samples {
                records.append(AnswerRecord(id: "\(slot.side.rawValue)/\(slot.question)/\(slot.instruction)/\(s)", questionID: q.id,
                                            question: q.text, answer: texts[i][s]))
            }
        }
        let runner = JudgeRunner(judges: [judge], rubrics: [definition.rubric, coherence], cache: cache, maxInFlight: settings.judgeMaxInFlight)
        let summary = try await runner.run(answers: records, output: nil) { p in
            progress?(TraitVectorBuildProgress(phase: "judge", done: p.done, total: p.total))
        }
        var verdicts: [String: Verdict] = [:]
        for row in summary.rows { verdicts[row.answerID + "|" + row.trait] = row.verdict }
        var pairs: [TraitVectorPair] = []
        for i in stride(from: 0, to: slots.count, by: 2) {
            let pos = slots[i], neg = slots[i + 1]
            let q = definition.questions[pos.question]
            for s in 0..<settings.samples {
                func answer(_ slot: Slot, _ text: String) -> TraitVectorAnswer {
                    let id = "\(slot.side.rawValue)/\(slot.question)/\(slot.instruction)/\(s)"
                    return TraitVectorAnswer(side: slot.side, system: slot.system, promptText: slot.text, answer: text,
                                             trait: verdicts[id + "|" + definition.rubric.name]!, coherence: verdicts[id + "|" + coherence.name]!)
                }
                pairs.append(TraitVectorPair(question: pos.question, instruction: pos.instruction, sample: s, questionID: q.id,
                                             questionText: q.text, positive: answer(pos, texts[i][s]), negative: answer(neg, texts[i + 1][s]),
                                             kept: false))
            }
        }
        return pairs
    }

    /// Marks the pairs kept by the thresholds (and with tokens on both sides), counting what was
    /// judged and why pairs were left out; returns the kept pairs' encodings, by pair index.
    func keep(_ pairs: inout [TraitVectorPair], settings: TraitVectorBuildSettings,
              counts: inout TraitVectorBuildCounts) -> [Int: (pos: Encoded, neg: Encoded)] {
        counts.pairs = pairs.count; counts.generated = 2 * pairs.count
        var encoded: [Int: (pos: Encoded, neg: Encoded)] = [:]
        for i in pairs.indices {
            let p = pairs[i]
            for a in [p.positive, p.negative] {
                for v in [a.trait, a.coherence] where v.status == .error {
                    counts.judgeErrors += 1
                    if counts.firstJudgeError == nil { counts.firstJudgeError = v.detail }
                }
                if a.trait.score != nil && a.coherence.score != nil { counts.judged += 1 }
            }
            guard let pt = p.positive.trait.score, let nt = p.negative.trait.score,
                  let pc = p.positive.coherence.score, let nc = p.negative.coherence.score else { counts.unscored += 1; continue }
            let passPos = pt >= settings.positiveThreshold, passNeg = nt < settings.negativeThreshold
            let passCoh = pc >= settings.coherenceThreshold && nc >= settings.coherenceThreshold
            if !passPos { counts.failedPositiveTrait += 1 }
            if !passNeg { counts.failedNegativeTrait += 1 }
            if !passCoh { counts.failedCoherence += 1 }
            guard passPos && passNeg && passCoh else { continue }
            let e = (pos: encode(p.positive), neg: encode(p.negative))
            guard e.pos.hasResponse && e.neg.hasResponse else { counts.empty += 1; continue }
            pairs[i].kept = true
            encoded[i] = e
            counts.kept += 1
        }
        return encoded
    }

    /// Prompt + answer as persona_vectors' `get_hidden_p_and_r` tokenizes them: the rendered
    /// prompt text and the answer text encoded together, the prompt's length its own encoding's.
    struct Encoded: Sendable {
        let ids: [Int32]
        let promptLength: Int
        var hasResponse: Bool { ids.count > promptLength }
    }

    func encode(_ a: TraitVectorAnswer) -> Encoded {
        Encoded(ids: tokenizer.encode(a.promptText + a.answer).map { Int32($0) }, promptLength: tokenizer.encode(a.promptText).count)
    }

    /// The response means of every hidden state, one forward pass per answer, off the
    /// cooperative pool.
    func capture(_ kept: [(pos: Encoded, neg: Encoded)],
                 progress: (@Sendable (TraitVectorBuildProgress) -> Void)?) async throws -> [(pos: HiddenStates, neg: HiddenStates)] {
        let model = self.model
        let work = kept.map { [$0.pos, $0.neg] }
        let flat = try await runOffPool { () throws -> [HiddenStates] in
            let cache = KVCache(config: model.config)
            let all = HiddenStateRequest.allLayers(model.config)
            var out: [HiddenStates] = []
            let total = work.count * 2
            for e in work.joined() {
                progress?(TraitVectorBuildProgress(phase: "capture", done: out.count, total: total))
                let seq = cache.addSequence(capacity: e.ids.count)
                defer { cache.remove(seq) }
                let input = ForwardInput(sequence: seq, tokens: e.ids, logits: .none,
                                         hiddenStates: [.responseMean(layers: all, promptLength: e.promptLength)])
                out.append(try model.forwardCapturing([input], cache: cache).hiddenStates[0][0])
            }
            progress?(TraitVectorBuildProgress(phase: "capture", done: total, total: total))
            return out
        }
        return stride(from: 0, to: flat.count, by: 2).map { (pos: flat[$0], neg: flat[$0 + 1]) }
    }

    // MARK: - The layer rule

    /// Per hidden state l in 1...L (nil at 0): the separation of the kept answers' response-mean
    /// projections p = (h . v_l) / |v_l| onto the vector's row l,
    ///
    ///     d_l = (mean(p_pos) - mean(p_neg)) / s_pooled,
    ///     s_pooled^2 = (sum (p_pos - mean(p_pos))^2 + sum (p_neg - mean(p_neg))^2) / (n_pos + n_neg - 2),
    ///
    /// in f64 (Cohen's d). A row of zeros separates nothing (0); identical projections within
    /// each side with distinct means separate without bound (+infinity).
    public static func separation(of vector: TraitVector, positive: [HiddenStates], negative: [HiddenStates]) -> [Double?] {
        (0..<vector.entries).map { l -> Double? in
            guard l > 0 else { return nil }
            guard let d = try? vector.direction(layer: l) else { return 0 }
            func projections(_ states: [HiddenStates]) -> [Double] { states.map { d.project($0.state(layer: l)!.pointer) } }
            return cohensD(projections(positive), projections(negative))
        }
    }

    /// (mean(a) - mean(b)) / pooled standard deviation; needs a.count + b.count > 2.
    public static func cohensD(_ a: [Double], _ b: [Double]) -> Double {
        precondition(!a.isEmpty && !b.isEmpty && a.count + b.count > 2, "the separation needs two values on one side")
        let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
        let ss = a.reduce(0) { $0 + ($1 - ma) * ($1 - ma) } + b.reduce(0) { $0 + ($1 - mb) * ($1 - mb) }
        let sd = (ss / Double(a.count + b.count - 2)).squareRoot()
        guard sd > 0 else { return ma > mb ? .infinity : 0 }
        return (ma - mb) / sd
    }

    /// The hidden state of the largest separation, the first on ties; nil when none is given.
    public static func bestLayer(_ separation: [Double?]) -> Int? {
        var best: (layer: Int, d: Double)?
        for (l, d) in separation.enumerated() {
            guard let d, !d.isNaN else { continue }
            if best == nil || d > best!.d { best = (l, d) }
        }
        return best?.layer
    }
}

/// A count shared by the generator's callbacks.
// Unchecked Sendable: `n` is read and written only while holding `lock`.
private final class BuildCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add(_ k: Int) -> Int { lock.withLock { n += k; return n } }
}
