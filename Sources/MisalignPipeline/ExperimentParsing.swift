import Foundation
import MisalignGeneration
import MisalignIO
import MisalignJudge
import MisalignModel

extension Experiment {
    /// Reads and checks a YAML config. Relative paths are relative to the config's folder.
    public static func load(from url: URL) throws(PipelineError) -> Experiment {
        let text = try readConfig(url)
        let absolute = url.absoluteURL.standardizedFileURL
        return try parse(text, file: absolute.path, base: absolute.deletingLastPathComponent())
    }

    /// Parses config text. `base` resolves relative paths.
    public static func parse(_ text: String, file: String, base: URL) throws(PipelineError) -> Experiment {
        let root = try YAMLNode.parse(text, file: file)
        func path(_ n: YAMLNode) throws(PipelineError) -> URL {
            let s = (try n.string() as NSString).expandingTildeInPath
            return s.hasPrefix("/") ? URL(fileURLWithPath: s) : base.appendingPathComponent(s).standardizedFileURL
        }
        let model = try path(root.required("model", "the base model folder (config.json + safetensors)"))
        let tokenizer = try root.optional("tokenizer").map(path)
        let output = try path(root.required("output", "the run folder to write, e.g. output: runs/study"))

        let (datasets, controls) = try parseDatasets(root.optional("datasets"), path: path)
        var seeds = [0, 11, 22, 33]
        if let s = try root.optional("seeds") {
            seeds = []
            for n in try s.list() { seeds.append(try n.int(min: 0, max: Bounds.seed, "a non-negative integer")) }
            if Set(seeds).count != seeds.count { throw s.error("lists a seed twice") }
            if seeds.count > Bounds.seeds { throw s.error("lists \(seeds.count) seeds; at most \(Bounds.seeds)") }
        }
        var external: [ExternalRun] = []
        if let e = try root.optional("external_checkpoints") {
            for item in try e.list() {
                let m = try item.mapping()
                let nameNode = try m.required("dataset", "a name for this run, e.g. medical")
                try checkName(try nameNode.string(), nameNode)
                let run = ExternalRun(dataset: try nameNode.string(),
                                      seed: try m.optional("seed")?.int(min: 0, max: Bounds.seed) ?? 0,
                                      path: try path(m.required("path", "the folder holding checkpoint-N/ folders")),
                                      follow: try parseFollow(m))
                try m.rejectUnknown()
                if external.contains(where: { $0.dataset == run.dataset && $0.seed == run.seed }) {
                    throw item.error("dataset \(run.dataset) seed \(run.seed) appears twice")
                }
                external.append(run)
            }
            if external.isEmpty { throw e.error("is empty; list {dataset, seed, path} entries or remove the key") }
        }
        if external.isEmpty {
            guard !datasets.isEmpty else {
                throw PipelineError.config(file: file, key: "datasets", line: root.line,
                                           reason: "missing; name at least one chat JSONL file (datasets: {medical: data/medical.jsonl}) or give external_checkpoints")
            }
            if seeds.isEmpty { throw PipelineError.config(file: file, key: "seeds", line: nil, reason: "is empty") }
        } else if !datasets.isEmpty {
            throw PipelineError.config(file: file, key: "external_checkpoints", line: nil,
                                       reason: "evaluates checkpoints trained elsewhere; remove datasets (nothing is trained here)")
        }
        let trainingOptions = try root.optional("training").map(parseTraining) ?? TrainingOptions()
        let (training, threads, skipInvalid) = (trainingOptions.settings, trainingOptions.threads, trainingOptions.skipInvalid)
        let traitsNode = try root.optional("traits")
        var evaluation = try parseEvaluation(root.optional("evaluation"), file: file, path: path, traitsSection: traitsNode != nil)
        let generation = try parseGeneration(root.optional("generation"))
        let judgesNode = try root.required("judges", "e.g. judges: {models: [\"openai:gpt-4.1-mini\"]}")
        var judges = try parseJudges(judgesNode, path: path, traitsSection: traitsNode != nil)
        if let traitsNode { try applyTraits(traitsNode, judgesNode: judgesNode, &evaluation, &judges, path: path) }
        let aggregation = try parseAggregation(root.optional("aggregation"))
        let detection = try parseDetection(root.optional("detection"), judges: judges.names, file: file)
        let monitor = try parseMonitor(root.optional("monitor"))
        let activationsNode = try root.optional("activations")
        let activations = try parseActivations(activationsNode, path: path)
        for s in monitor.signals {
            guard let trait = ActivationSettings.trait(ofSignal: s) else { continue }
            if !activations.vectors.contains(where: { $0.trait == trait }) {
                throw PipelineError.config(file: file, key: "monitor.signals", line: nil,
                                           reason: "`\(s)` projects onto the \(trait) vector; name it in activations.vectors (\(trait): FILE)")
            }
        }
        if activations.isEnabled, generation.backend != .local {
            throw PipelineError.config(file: file, key: "activations", line: activationsNode.flatMap(\.line),
                                       reason: "projections are recorded by the in-process generator while it decodes; with generation.backend: vllm "
                                           + "the server's hidden states are out of reach. Use backend: local, or remove the activations section")
        }
        try root.rejectUnknown()
        return Experiment(model: model, tokenizer: tokenizer, output: output, datasets: datasets, controls: controls, seeds: seeds, training: training,
                          threads: threads, externalCheckpoints: external, evaluation: evaluation, generation: generation,
                          judges: judges, aggregation: aggregation, detection: detection, monitor: monitor, activations: activations, source: file,
                          skipInvalid: skipInvalid, lines: root.keyLines())
    }

    static func parseGeneration(_ n: YAMLNode?) throws(PipelineError) -> GenerationSettings {
        var g = GenerationSettings()
        guard let n = try n?.mapping() else { return g }
        let backend = try n.optional("backend")
        switch try backend?.string() ?? "local" {
        case "local": g.backend = .local
        case "vllm":
            let url = try n.required("url", "the server's base URL, e.g. http://localhost:8000/v1").string()
            guard RemoteEndpoint.isServerURL(url) else { throw PipelineError.config(file: n.file, key: "generation.url", line: nil, reason: "must start with http:// or https://") }
            g.backend = .vllm(url: url, servedModel: try n.required("served_model", "the base model's name on the server").string())
        default: throw backend!.error("must be local or vllm")
        }
        if g.backend == .local, let key = ["url", "served_model"].first(where: n.keys.contains) {
            throw PipelineError.config(file: n.file, key: n.join(key), line: nil, reason: "applies to backend: vllm only")
        }
        if let v = try n.optional("path_map") {
            guard g.backend != .local else { throw v.error("applies to backend: vllm only") }
            for (local, server) in try v.entries() { g.pathMappings.append(AdapterPathMapping(local: local, server: try server.string())) }
        }
        try readSection(n, into: &g, structural: ["backend", "url", "served_model", "path_map"])
        try n.rejectUnknown()
        return g
    }

    static func parseMonitor(_ n: YAMLNode?) throws(PipelineError) -> MonitorSettings {
        var m = MonitorSettings()
        guard let n = try n?.mapping() else { return m }
        if let v = try n.optional("enabled") { m.enabled = try v.bool() }
        if let v = try n.optional("every_k") { m.everyK = try v.int(min: 1, max: TrainingSettings.Bounds.steps) }
        if let v = try n.optional("questions") { m.questions = try v.strings() }
        if let v = try n.optional("samples") { m.samples = try v.int(min: 1, max: Bounds.samples) }
        if let v = try n.optional("max_new_tokens") { m.maxNewTokens = try v.int(min: 1, max: Bounds.maxNewTokens) }
        if let v = try n.optional("baseline") { m.baseline = try v.int(min: 2, max: Bounds.samples) }
        if let v = try n.optional("min_sd") { m.minSD = try v.double(in: 0...1e6, ">= 0") }
        if let v = try n.optional("judge") {
            let spec = try v.string()
            do { _ = try JudgeSpec(parsing: spec) } catch { throw v.error(error.description) }
            m.judge = spec
        }
        if let v = try n.optional("signals") {
            m.signals = try v.strings()
            if m.signals.isEmpty || Set(m.signals).count != m.signals.count { throw v.error("must name each signal once, at least one") }
            for s in m.signals where RubricSet.builtin[s] == nil && ActivationSettings.trait(ofSignal: s) == nil {
                throw v.error("unknown signal `\(s)`; use a builtin trait (hallucination, evil, ...) or a projection TRAIT@proj")
            }
        }
        if let v = try n.optional("projection_min_sd") { m.projectionMinSD = try v.double(in: 0...1e6, ">= 0") }
        if let v = try n.optional("stop_signals") {
            m.stopSignals = try v.strings()
            for s in m.stopSignals where !m.signals.contains(s) { throw v.error("unknown signal `\(s)`; use one of monitor.signals (\(m.signals.joined(separator: ", ")))") }
        }
        if let v = try n.optional("detectors") {
            m.detectors = try v.strings()
            for d in m.detectors where !["cusum", "bocpd"].contains(d) { throw v.error("unknown detector `\(d)`; use cusum or bocpd") }
        }
        if let v = try n.optional("stop_on_alarm") { m.stopOnAlarm = try v.bool() }
        try n.rejectUnknown()
        return m
    }
}
