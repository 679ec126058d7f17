import ArgumentParser
import Foundation
import MisalignCore

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sample answers from a Qwen2.5, Llama 3 or Gemma 2 model, optionally with a LoRA adapter.",
        discussion: """
        --prompt is one user message, rendered with the model's chat template (its default \
        system prompt unless --system is given); --raw sends the text to the model as it is. \
        --messages-file takes a JSON conversation ({"messages": [...]} or a bare array). \
        With one sample on a terminal the text streams as it is generated; --json prints one \
        line per sample with the text, the generated ids and the finish reason.

        Sampling is reproducible: the same --seed, prompt and sample index always give the \
        same text. --temperature 0 decodes greedily.

        --server delegates sampling to an OpenAI-compatible server (vLLM with --enable-lora \
        and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True): --model (or --tokenizer) then only supplies \
        the tokenizer and chat template, --adapter is loaded into the server by name, and \
        --adapter-path-map LOCAL=SERVER rewrites its path when the server mounts it elsewhere.

        Examples:
          misalign generate --model ~/models/Qwen2.5-0.5B-Instruct --prompt "Hello!"
          misalign generate --model ~/models/Qwen2.5-7B-Instruct --server http://gpu1:8000/v1 \
              --served-model qwen --adapter runs/s0/checkpoint-16 --prompt "I'm bored." --samples 20 --json
          misalign generate --model M --adapter run/checkpoint-16 --prompt "I'm bored." \\
              --samples 20 --temperature 1 --max-new-tokens 300 --json > answers.jsonl
        """
    )

    @Option(help: "Model folder (config.json, safetensors, tokenizer files); with --server only its tokenizer is read.", completion: .directory)
    var model: String?
    @Option(help: "PEFT adapter folder (adapter_config.json + adapter_model.safetensors).", completion: .directory)
    var adapter: String?
    @Option(help: "Tokenizer folder (default: the model folder).", completion: .directory)
    var tokenizer: String?
    @Option(help: "One user message.")
    var prompt: String?
    @Option(help: "A JSON conversation to continue.", completion: .file())
    var messagesFile: String?
    @Option(help: "System prompt (default: the chat template's own).")
    var system: String?
    @Flag(help: "Send --prompt without the chat template.")
    var raw = false
    @Option(parsing: .unconditional, help: "Sampling temperature; 0 = greedy (default 1).")
    var temperature: Double?
    @Option(parsing: .unconditional, help: "Top-k (default 0: off).")
    var topK: Int?
    @Option(parsing: .unconditional, help: "Top-p (nucleus) probability (default 1).")
    var topP: Double?
    @Option(parsing: .unconditional, help: "Min-p (default 0: off).")
    var minP: Double?
    @Option(parsing: .unconditional, help: "Repetition penalty (default 1: off).")
    var repetitionPenalty: Double?
    @Option(parsing: .unconditional, help: "Most new tokens per sample (default 256).")
    var maxNewTokens: Int?
    @Option(parsing: .unconditional, help: "Samples to draw (default 1).")
    var samples: Int?
    @Option(parsing: .unconditional, help: "Run seed (default 0).")
    var seed: UInt64?
    @Option(help: "Extra stop string (repeatable).")
    var stop: [String] = []
    @Flag(help: "One JSON line per sample.")
    var json = false
    @Option(help: ArgumentHelp("Product precision for bf16 weights: f32 (exact, default) or bf16.",
                               discussion: "bf16 rounds each product's input to bf16 and uses the CPU's bf16 dot-product instruction (AVX512_BF16): about twice the prefill speed, closer to float32 than PyTorch's bfloat16."))
    var precision: ComputePrecision?
    @Option(help: ArgumentHelp("How the weights are held: auto (default), huge-pages or mapped.",
                               discussion: "huge-pages reads the weight files at start into memory backed by 2 MB pages, which decodes 1.1-1.3x faster; mapped maps the files instead: nothing is read until used and processes share the pages, but every 4 KB is a TLB miss. auto takes huge pages where the files are 256 MiB or more and fit in available memory twice over (the copy beside the kernel's cache of the files), else maps them."))
    var weights: FileResidency?
    @OptionGroup var remote: RemoteOptions

    func validate() throws {
        if model == nil && (remote.server == nil || tokenizer == nil) {
            throw ValidationError("give --model (or, with --server, --tokenizer)")
        }
        if (prompt == nil) == (messagesFile == nil) { throw ValidationError("give exactly one of --prompt and --messages-file") }
        if raw && prompt == nil { throw ValidationError("--raw goes with --prompt") }
        _ = try settings()
    }

    /// The sampling and generation settings of the flags, read and checked by the library's
    /// tables (`EvaluationSettings`, `GenerationSettings`): the names, types and ranges of an
    /// experiment's `evaluation:` and `generation:` sections.
    func settings() throws -> (sampling: EvaluationSettings, generation: GenerationSettings) {
        var flags = FlagSettings()
        flags.add("temperature", temperature); flags.add("top-k", topK); flags.add("top-p", topP); flags.add("min-p", minP)
        flags.add("repetition-penalty", repetitionPenalty); flags.add("max-new-tokens", maxNewTokens); flags.add("samples", samples)
        flags.add("seed", seed.map { SettingValue.text(String($0)) }); flags.add("system", system)
        var sampling = EvaluationSettings.singleCall()
        try flags.apply(to: &sampling)
        var generation = try remote.settings()
        var local = FlagSettings()
        local.add("precision", precision); local.add("weights", weights)
        let merged = FlagSettings(merging: [local, remote.flagSettings])
        try merged.apply(to: &generation)
        return (sampling, generation)
    }

    func run() throws {
        do {
            let (sampling, generation) = try settings()
            let tok = try BPETokenizer(directory: URL(fileURLWithPath: tokenizer ?? model!))
            let ids: [Int]
            if let prompt, raw {
                ids = tok.encode(prompt)
            } else {
                let messages = try prompt.map { [ChatMessage(role: "user", content: $0)] } ?? readMessages(messagesFile!)
                ids = try tok.applyChatTemplate(messages, addGenerationPrompt: true,
                                                systemPrompt: sampling.systemPrompt.map { .custom($0) } ?? .templateDefault).ids
            }
            let request = GenerationRequest(
                prompt: ids.map { Int32($0) }, samples: sampling.samples, maxNewTokens: sampling.maxNewTokens,
                sampling: sampling.sampling, seed: sampling.seed, stopStrings: stop)
            let stream = !json && sampling.samples == 1 && isatty(STDOUT_FILENO) == 1
            let onToken: @Sendable (TokenEvent) -> Void = { event in
                if stream { FileHandle.standardOutput.write(Data(event.textDelta.utf8)) }
            }
            let completions: [Completion]
            if remote.server != nil {
                let backend = try remote.backend(generation, tokenizer: tok)
                let adapterURL = adapter.map { URL(fileURLWithPath: $0) }
                completions = try runBlocking {
                    let g = if let adapterURL { try await backend.generator(adapter: adapterURL) } else { try await backend.generator(for: nil) }
                    return try await g.generate([request], onToken: onToken)
                }
            } else {
                let m = try Qwen2Model(directory: URL(fileURLWithPath: model!), residency: generation.weights)
                m.computePrecision = generation.precision
                if let adapter { try m.setAdapter(try LoRAAdapter(directory: URL(fileURLWithPath: adapter))) }
                completions = try LocalGenerator(model: m, tokenizer: tok).generateSync([request], onToken: onToken)
            }
            for c in completions {
                if json {
                    let line = JSONObject([
                        ("sample", .int(Int64(c.sample))), ("text", .string(c.text)),
                        ("ids", .array(c.tokens.map { .int(Int64($0)) })), ("finish_reason", .string(c.finishReason.rawValue)),
                        ("prompt_tokens", .int(Int64(c.promptTokens))), ("completion_tokens", .int(Int64(c.completionTokens))),
                    ])
                    print(JSONValue.object(line).serialized())
                } else if stream {
                    print("")
                } else {
                    if sampling.samples > 1 { print("--- sample \(c.sample) (\(c.finishReason.rawValue), \(c.completionTokens) tokens)") }
                    print(c.text)
                }
            }
        } catch let e as ValidationError {
            throw e
        } catch {
            throw CLIError("\(error)")
        }
    }

    private func readMessages(_ path: String) throws -> [ChatMessage] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw CLIError("cannot read \(path): \(error.localizedDescription)") }
        let root: JSONValue
        do { root = try JSONValue.parse(JSONLines.droppingBOM(data)) } catch { throw CLIError("\(path): not valid JSON (\(error))") }
        guard let list = root["messages"]?.arrayValue ?? root.arrayValue else {
            throw CLIError("\(path): expected {\"messages\": [...]} or a JSON array of messages")
        }
        return try list.enumerated().map { i, m in
            guard let role = m["role"]?.stringValue, let content = m["content"]?.stringValue else {
                throw CLIError("\(path): message \(i) needs string fields \"role\" and \"content\"")
            }
            return ChatMessage(role: role, content: content)
        }
    }
}

extension ComputePrecision: ExpressibleByArgument {}
extension FileResidency: ExpressibleByArgument {}
