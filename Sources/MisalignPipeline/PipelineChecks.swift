import Foundation
import MisalignModel

extension PipelineRunner {
    /// The model, tokenizer, data, external checkpoints and server the config names exist.
    func checkInputs() throws {
        let e = experiment
        let fm = FileManager.default
        // Training and local generation need the weights; every path needs the tokenizer (the
        // chat template is rendered here, and a server is sent token ids).
        if e.externalCheckpoints.isEmpty || e.generation.backend == .local {
            for f in ["config.json"] where !fm.fileExists(atPath: e.model.appendingPathComponent(f).path) {
                throw PipelineError.missingInput(key: "model", path: e.model.path, reason: "no \(f); give a model folder (config.json + *.safetensors) of a supported family (Qwen2, Llama)")
            }
        }
        let tok = e.tokenizer ?? e.model
        if !fm.fileExists(atPath: tok.appendingPathComponent("tokenizer.json").path) {
            throw PipelineError.missingInput(key: e.tokenizer == nil ? "model" : "tokenizer", path: tok.path,
                                             reason: "no tokenizer.json" + (e.generation.backend == .local ? "" : "; with a server backend, tokenizer: may name a folder holding only the tokenizer files"))
        }
        for d in e.datasets {
            var isDir: ObjCBool = false
            if !fm.fileExists(atPath: d.path.path, isDirectory: &isDir) {
                throw PipelineError.missingInput(key: "datasets.\(d.name)", path: d.path.path, reason: "no such file")
            }
            if isDir.boolValue {
                throw PipelineError.missingInput(key: "datasets.\(d.name)", path: d.path.path, reason: "is a folder; give a chat JSONL file")
            }
        }
        for x in e.externalCheckpoints {
            if x.follow != nil {
                // A followed job may not have started: its folder may appear later (idle_timeout).
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: x.path.path, isDirectory: &isDir), !isDir.boolValue {
                    throw PipelineError.missingInput(key: "external_checkpoints", path: x.path.path,
                                                     reason: "is a file; path: names the folder the job writes checkpoint-N/ folders into")
                }
                continue
            }
            guard let list = try? CheckpointDirectory.list(in: x.path), !list.isEmpty else {
                throw PipelineError.missingInput(key: "external_checkpoints", path: x.path.path,
                                                 reason: "no checkpoint-N/ folder with adapter_model.safetensors, or with a model (config.json and model.safetensors)")
            }
        }
        if e.generation.backend != .local, backendOverride == nil {
            _ = try PipelineBackends.endpoint(e.generation, transport: nil)  // a bad URL or missing key fails before any work
        }
    }

    /// Checks the settings that depend on the model (LoRA rank against the hidden size, layer
    /// indices, generation lengths against the positions it holds) from its `config.json`,
    /// before anything is written, so a corrected config is never refused as another config.
    func validateAgainstModel() throws {
        let e = experiment
        let url = e.model.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return }  // a server backend with a tokenizer-only folder
        let config: Qwen2Config
        do { config = try Qwen2Config.load(from: url) } catch {
            throw PipelineError.missingInput(key: "model", path: url.path, reason: "\(error)")
        }
        if e.externalCheckpoints.isEmpty {
            do { try e.training.validate(model: config) } catch let err as TrainingError {
                guard case .invalidSetting(let name, let detail) = err else { throw err }
                let key = "training." + (name == "save-every" ? "checkpoint_every" : name.replacingOccurrences(of: "-", with: "_"))
                throw PipelineError.config(file: e.source, key: key, line: e.lines[key], reason: detail)
            }
        }
        let positions = config.maxPositionEmbeddings
        if e.generation.backend == .local, e.evaluation.maxNewTokens >= positions {
            throw PipelineError.config(file: e.source, key: "evaluation.max_new_tokens", line: e.lines["evaluation.max_new_tokens"],
                                       reason: "is \(e.evaluation.maxNewTokens); the model holds at most \(positions) positions (max_position_embeddings), prompt included")
        }
        if e.monitor.enabled, e.externalCheckpoints.isEmpty, e.monitor.maxNewTokens >= positions {
            throw PipelineError.config(file: e.source, key: "monitor.max_new_tokens", line: e.lines["monitor.max_new_tokens"],
                                       reason: "is \(e.monitor.maxNewTokens); the model holds at most \(positions) positions (max_position_embeddings), prompt included")
        }
    }

    /// Creates the output folder, saying what is wrong when a file stands in the way.
    func createOutputFolder() throws {
        let e = experiment
        let fm = FileManager.default
        var isDir: ObjCBool = false
        // The nearest existing path at or above the output: it must be a folder.
        var existing = e.output
        while !fm.fileExists(atPath: existing.path, isDirectory: &isDir), existing.path != "/" { existing.deleteLastPathComponent() }
        if !isDir.boolValue {
            let what = existing.path == e.output.path ? "is a file" : "cannot be made: \(existing.path) is a file"
            throw PipelineError.config(file: e.source, key: "output", line: e.lines["output"],
                                       reason: "\(e.output.path) \(what); output: names the run folder (created when missing), so give a folder's path")
        }
        do { try fm.createDirectory(at: e.output, withIntermediateDirectories: true) } catch {
            throw PipelineError.unwritable(path: e.output.path, reason: access(existing.path, W_OK) != 0 ? "permission denied" : (error as NSError).localizedDescription)
        }
        guard access(e.output.path, W_OK) == 0 else { throw PipelineError.unwritable(path: e.output.path, reason: "permission denied") }
    }
}
