import ArgumentParser
import Foundation
import MisalignCore

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sample answers from a Qwen2 model, optionally with a LoRA adapter.",
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
    @Option(parsing: .unconditional, help: "Sampling temperature; 0 = greedy.")
    var temperature: Double = 1
    @Option(parsing: .unconditional, help: "Top-k (0 = off).")
    var topK: Int = 0
    @Option(parsing: .unconditional, help: "Top-p (nucleus) probability.")
    var topP: Double = 1
    @Option(parsing: .unconditional, help: "Min-p (0 = off).")
    var minP: Double = 0
    @Option(parsing: .unconditional, help: "Repetition penalty (1 = off).")
    var repetitionPenalty: Double = 1
    @Option(parsing: .unconditional, help: "Most new tokens per sample.")
    var maxNewTokens: Int = 256
    @Option(parsing: .unconditional, help: "Samples to draw.")
    var samples: Int = 1
    @Option(parsing: .unconditional, help: "Run seed.")
    var seed: UInt64 = 0
    @Option(help: "Extra stop string (repeatable).")
    var stop: [String] = []
    @Flag(help: "One JSON line per sample.")
    var json = false
    @Option(help: ArgumentHelp("Product precision for bf16 weights: f32 (exact, default) or bf16.",
                               discussion: "bf16 rounds each product's input to bf16 and uses the CPU's bf16 dot-product instruction (AVX512_BF16): about twice the prefill speed, closer to float32 than PyTorch's bfloat16."))
    var precision: ComputePrecision = .f32
    @Option(help: ArgumentHelp("How the weights are held: auto (default), huge-pages or mapped.",
                               discussion: "huge-pages reads the weight files at start into memory backed by 2 MB pages, which decodes 1.1-1.3x faster; mapped maps the files instead: nothing is read until used and processes share the pages, but every 4 KB is a TLB miss. auto takes huge pages where the files are 256 MiB or more and fit in available memory twice over (the copy beside the kernel's cache of the files), else maps them."))
    var weights: FileResidency = .auto
    @OptionGroup var remote: RemoteOptions

    func validate() throws {
        if model == nil && (remote.server == nil || tokenizer == nil) {
            throw ValidationError("give --model (or, with --server, --tokenizer)")
        }
        if (prompt == nil) == (messagesFile == nil) { throw ValidationError("give exactly one of --prompt and --messages-file") }
        if raw && prompt == nil { throw ValidationError("--raw goes with --prompt") }
        let bounds = Experiment.Bounds.self
        if !(1...bounds.samples).contains(samples) { throw ValidationError("--samples is \(samples); it must be in 1...\(bounds.samples)") }
        if !(1...bounds.maxNewTokens).contains(maxNewTokens) {
            throw ValidationError("--max-new-tokens is \(maxNewTokens); it must be in 1...\(bounds.maxNewTokens)")
        }
        if topK > Experiment.Bounds.topK { throw ValidationError("--top-k is \(topK); it must be at most \(bounds.topK)") }
        do {
            try SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                   repetitionPenalty: repetitionPenalty).validate()
        } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        do {
            let tok = try BPETokenizer(directory: URL(fileURLWithPath: tokenizer ?? model!))
            let ids: [Int]
            if let prompt, raw {
                ids = tok.encode(prompt)
            } else {
                let messages = try prompt.map { [ChatMessage(role: "user", content: $0)] } ?? readMessages(messagesFile!)
                ids = try tok.applyChatTemplate(messages, addGenerationPrompt: true,
                                                systemPrompt: system.map { .custom($0) } ?? .templateDefault).ids
            }
            let request = GenerationRequest(
                prompt: ids.map { Int32($0) }, samples: samples, maxNewTokens: maxNewTokens,
                sampling: SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP, repetitionPenalty: repetitionPenalty),
                seed: seed, stopStrings: stop)
            let stream = !json && samples == 1 && isatty(STDOUT_FILENO) == 1
            let onToken: @Sendable (TokenEvent) -> Void = { event in
                if stream { FileHandle.standardOutput.write(Data(event.textDelta.utf8)) }
            }
            let completions: [Completion]
            if remote.server != nil {
                let backend = try remote.backend(tokenizer: tok)
                let adapterURL = adapter.map { URL(fileURLWithPath: $0) }
                completions = try runBlocking {
                    let g = if let adapterURL { try await backend.generator(adapter: adapterURL) } else { try await backend.generator(for: nil) }
                    return try await g.generate([request], onToken: onToken)
                }
            } else {
                let m = try Qwen2Model(directory: URL(fileURLWithPath: model!), residency: weights)
                m.computePrecision = precision
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
                    if samples > 1 { print("--- sample \(c.sample) (\(c.finishReason.rawValue), \(c.completionTokens) tokens)") }
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
