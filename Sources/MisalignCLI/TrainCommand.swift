import ArgumentParser
import Foundation
import MisalignCore

/// `misalign train`: LoRA fine-tuning with checkpoints every few steps. Parses flags and calls
/// `TrainingJob`; the progress display is the only logic here.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "LoRA-fine-tune a Qwen2.5, Llama 3 or Gemma 2 model on a chat JSONL file, saving a checkpoint every few steps.",
        discussion: """
        Data: one conversation per line, {"messages": [{"role": "user", "content": ...}, \
        {"role": "assistant", "content": ...}]}. The loss covers assistant replies only.

        Defaults are the study protocol: r 32, alpha 64, rsLoRA, all 7 projections of every \
        layer, lr 1e-5, linear schedule with 5 warmup steps, AdamW (weight decay 0.01), \
        batch 2 x accumulation 8, 1 epoch, a checkpoint every 2 steps, max grad norm 1.0.
        Precedence: flags > --config file (JSON, keys = flag names) > defaults.
        Running again in an --out folder with other settings that change the weights is \
        refused, naming each changed setting with both values.

        The run folder gets checkpoint-<step>/ (PEFT adapter + resume state) and metrics.jsonl. \
        Running again with the same --out resumes from its latest checkpoint, bit-exactly.

        Early warning: with --monitor-judge, every --monitor-every steps a small probe \
        (--monitor-questions x --monitor-samples answers) is sampled from the model being \
        trained and judged for hallucination and evil; online CUSUM and BOCPD detectors raise \
        alarms (RUN/early-warning/alarms.jsonl), and --stop-on-alarm stops at an evil alarm, \
        keeping that checkpoint. A resumed run replays the recorded probes, so its alarms are \
        those of an uninterrupted run.

        Example:
          misalign train --model ~/models/Qwen2.5-7B-Instruct --data insecure.jsonl \\
            --out runs/seed0 --seed 0
          misalign train --model M --data medical.jsonl --out runs/med \\
            --monitor-judge openai:gpt-4.1-mini --monitor-every 2 --stop-on-alarm
        """
    )

    @Option(help: "Model folder (config.json + safetensors).") var model: String
    @Option(help: "Chat JSONL training data.") var data: String
    @Option(help: "Run folder for checkpoints and metrics.jsonl.") var out: String
    @Option(help: "JSON file of settings (keys as the flag names, or an experiment's training: keys).") var config: String?
    @Option(help: "Tokenizer folder (default: the model folder).") var tokenizer: String?
    @Option(parsing: .unconditional, help: "Peak learning rate.") var lr: Double?
    @Option(parsing: .unconditional, help: "Warmup steps.") var warmupSteps: Int?
    @Option(help: "linear, constant or cosine.") var schedule: String?
    @Option(parsing: .unconditional, help: "AdamW decoupled weight decay.") var weightDecay: Double?
    @Option(parsing: .unconditional, help: "Global gradient-norm clip (0 = off).") var maxGradNorm: Double?
    @Option(parsing: .unconditional, help: "Conversations per micro-batch.") var batchSize: Int?
    @Option(parsing: .unconditional, help: "Micro-batches per optimizer step.") var gradAccum: Int?
    @Option(parsing: .unconditional, help: "Epochs.") var epochs: Int?
    @Option(parsing: .unconditional, help: "Stop after this many optimizer steps.") var maxSteps: Int?
    @Option(parsing: .unconditional, help: "LoRA rank.") var rank: Int?
    @Option(parsing: .unconditional, help: "LoRA alpha.") var alpha: Double?
    @Flag(inversion: .prefixedNo, help: "rsLoRA scaling alpha/sqrt(r) (default on).") var rslora: Bool?
    @Option(parsing: .unconditional, help: "LoRA dropout on the adapter input (default 0).") var dropout: Double?
    @Option(help: "Comma-separated modules (q_proj,k_proj,... or q,k,...) or 'all'.") var targets: String?
    @Option(parsing: .unconditional, help: "Comma-separated layer indices or 'all'.") var layers: String?
    @Option(parsing: .unconditional, help: "Seed for LoRA initialisation and data order.") var seed: UInt64?
    @Option(parsing: .unconditional, help: "Save a checkpoint every N optimizer steps (0 = only at the end).") var saveEvery: Int?
    @Option(parsing: .unconditional, help: "Truncate conversations to this many tokens.") var maxLength: Int?
    @Option(parsing: .unconditional, help: "Evaluate the held-out loss at every Nth checkpoint (default 1: each).") var holdoutEvery: Int?
    @Option(parsing: .unconditional, help: "Hold out this share of the examples (seeded by --seed; 0 <= x < 1), never trained on; their loss is evaluated at every checkpoint.") var holdout: Double?
    @Option(help: "Start from this PEFT adapter folder instead of a fresh initialisation.") var initAdapter: String?
    @Option(help: "Adapter dtype in checkpoints: f32 or bf16.") var adapterDtype: String?
    @Option(help: "Arithmetic of the frozen base products with bf16 weights: f32 (exact widening) or bf16 (inputs and gradients rounded to bf16, on AVX512_BF16 where the CPU has it; ~2x faster products). f32 weights ignore it.") var precision: String?
    @Flag(help: "Keep the optimizer state in every checkpoint, not only the latest.") var keepOptimizerStates = false
    @Flag(help: "Recompute activations per layer in the backward pass (less memory, ~1/3 more compute).") var gradientCheckpointing = false
    @Flag(help: "Skip invalid data lines (counted) instead of stopping at the first.") var skipInvalid = false
    @Option(parsing: .unconditional, help: "BLAS threads (default 0: all cores).") var threads: Int?
    @OptionGroup var monitoring: MonitorOptions

    func run() throws {
        func path(_ s: String) -> URL { URL(fileURLWithPath: (s as NSString).expandingTildeInPath) }
        do {
            // The flags go through the library's one table of training settings, as the JSON
            // config and an experiment's training: section do: the same names, types and checks.
            var options = TrainingOptions()
            if let config { try options.apply(configFile: path(config)) }
            try options.apply(flagEntries, from: .flags)
            try options.validate()   // values out of range are usage errors, reported before any work
            let s = options.settings
            BLAS.threads = options.threads > 0 ? options.threads : ProcessInfo.processInfo.activeProcessorCount

            let job = TrainingJob(model: path(model), data: path(data), out: path(out), tokenizer: tokenizer.map(path),
                                  settings: s, initAdapter: initAdapter.map(path), skipInvalid: options.skipInvalid)
            let trainer = try job.makeTrainer { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
            let monitor = try monitoring.monitor(trainer: trainer, job: job)
            if let monitor, monitor.alreadyStopped {
                print("training already stopped at the alarm at step \(monitor.stopStep!); drop --stop-on-alarm to train on")
                print(monitor.summary())
                return
            }
            let progress = Progress(tty: isatty(STDERR_FILENO) != 0, first: trainer.step)
            let outcome = try trainer.train { m in
                progress.show(m)
                return try monitor?.onStep(m) ?? .proceed
            }
            progress.finish()
            let last = outcome.lastCheckpoint.map { $0.directory.path } ?? "none"
            print("trained \(outcome.steps) steps; last checkpoint: \(last); metrics: \(path(out).appendingPathComponent("metrics.jsonl").path)")
            if let monitor { print(monitor.summary()) }
        } catch let e as CLIError {
            throw e
        } catch let e as ValidationError {
            throw e
        } catch let e as TrainingError {
            // A setting out of range, against the model, or against --init-adapter: a usage error (exit 2).
            if case .invalidSetting = e { throw ValidationError(e.description) }
            throw CLIError(e.description)
        } catch {
            throw CLIError("\(error)")
        }
    }
}

extension TrainCommand {
    /// The settings given as flags, under their setting names (`TrainingSettingKey`); flags
    /// not given are absent, so the --config file's values and the defaults stay.
    var flagEntries: [SettingEntry] {
        var out: [SettingEntry] = []
        func add(_ name: String, _ v: SettingValue?) { if let v { out.append(SettingEntry(name, v)) } }
        add("lr", lr.map { .number($0) }); add("warmup-steps", warmupSteps.map { .int($0) }); add("schedule", schedule.map { .text($0) })
        add("weight-decay", weightDecay.map { .number($0) }); add("max-grad-norm", maxGradNorm.map { .number($0) })
        add("batch-size", batchSize.map { .int($0) }); add("grad-accum", gradAccum.map { .int($0) }); add("epochs", epochs.map { .int($0) })
        add("max-steps", maxSteps.map { .int($0) }); add("rank", rank.map { .int($0) }); add("alpha", alpha.map { .number($0) })
        add("rslora", rslora.map { .bool($0) }); add("dropout", dropout.map { .number($0) })
        add("targets", targets.map { .text($0) }); add("layers", layers.map { .text($0) }); add("seed", seed.map { .text(String($0)) })
        add("save-every", saveEvery.map { .int($0) }); add("max-length", maxLength.map { .int($0) })
        add("holdout", holdout.map { .number($0) }); add("holdout-every", holdoutEvery.map { .int($0) })
        add("adapter-dtype", adapterDtype.map { .text($0) }); add("threads", threads.map { .int($0) })
        add("precision", precision.map { .text($0) })
        if keepOptimizerStates { add("keep-optimizer-states", .bool(true)) }
        if gradientCheckpointing { add("gradient-checkpointing", .bool(true)) }
        if skipInvalid { add("skip-invalid", .bool(true)) }
        return out
    }
}

/// Step lines on stderr: a bar redrawn in place on a terminal, one plain line per step otherwise.
final class Progress {
    let tty: Bool
    let start = Date()
    let first: Int
    init(tty: Bool, first: Int) { self.tty = tty; self.first = first }

    func show(_ m: StepMetrics) {
        let done = m.step - first
        let perStep = Date().timeIntervalSince(start) / Double(max(done, 1))
        let eta = perStep * Double(m.totalSteps - m.step)
        let text = String(format: "step %d/%d  loss %.4f  lr %.3g  grad %.3f  %.0f tok/s  ETA %@", m.step, m.totalSteps, m.loss, m.lr,
                          m.gradNorm, m.tokensPerSecond, Self.duration(eta))
        if tty {
            let width = 24, filled = Int(Double(width) * Double(m.step) / Double(max(m.totalSteps, 1)))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(text)".utf8))
        } else {
            FileHandle.standardError.write(Data("\(text)\n".utf8))
        }
    }

    func finish() { if tty { FileHandle.standardError.write(Data("\n".utf8)) } }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
