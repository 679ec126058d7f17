import ArgumentParser
import Foundation
import Synchronization
import MisalignCore

/// `misalign init`: writes a commented example experiment config.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a commented example experiment config (YAML) with the study's defaults.",
        discussion: """
        --preset default writes every section with its defaults, commented. --preset study \
        writes the reference study's protocol: Qwen2.5-7B-Instruct, rsLoRA r 32, lr 1e-5 over \
        2 x 8, a checkpoint every 2 steps, a 10% held-out split, persona_vectors' datasets at \
        three levels with normal as the control, evil and hallucination judged on their trait \
        files' questions, GPT-4.1-mini pinned and seeded plus a second judge, averaged per \
        answer, and the study's onset rules (Docs/Reproducing.md compares it element by element).

        Examples:
          misalign init                 # writes misalign.yaml here
          misalign init study.yaml --preset study
          misalign init study.yaml --force
        """)

    @Argument(help: "Where to write it.") var path = "misalign.yaml"
    @Option(help: "default (every section's defaults) or study (the reference study's protocol).") var preset: ConfigPreset = .default
    @Flag(help: "Overwrite an existing file.") var force = false

    func run() throws {
        let chosen = preset
        do { try Experiment.writeExample(to: URL(fileURLWithPath: path), preset: chosen, force: force) } catch { throw CLIError("\(error)") }
        let edit = chosen == .study ? "model, the dataset and trait file paths, and the second judge's URL" : "model, datasets and judges"
        print("wrote \(path); edit \(edit), then: misalign run \(path)")
    }
}

/// `misalign run`: the whole pipeline, resumable.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train, generate, judge, aggregate and detect, as an experiment config says; resumes where it stopped.",
        discussion: """
        Every finished unit (a checkpoint, a group of answers, a verdict, an aggregate, an onset) \
        is committed to OUTPUT/store.sqlite; running the same command again after a crash, \
        Ctrl-C or kill -9 continues from there, and on a complete run does nothing. Exports \
        (CSV and JSON Lines per table) are rebuilt in OUTPUT/exports/.

        Examples:
          misalign init study.yaml && misalign run study.yaml
          misalign run study.yaml --quiet --json > summary.json
          misalign status runs/study
        """)

    @Argument(help: "Experiment config (YAML).") var config: String
    @Flag(help: "No progress lines on stderr.") var quiet = false
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() throws {
        let summary: PipelineSummary
        do {
            let experiment = try Experiment.load(from: URL(fileURLWithPath: config))
            let printer = ProgressPrinter(quiet: quiet)
            defer { printer.finish() }
            let runner = PipelineRunner(experiment) { printer.show($0) }
            let sig = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
            signal(SIGINT, SIG_IGN)
            sig.setEventHandler { runner.cancel() }
            sig.resume()
            summary = try runner.runSync()
        } catch PipelineError.cancelled(let stage) {
            // Ctrl-C: what was committed is kept; 130 as Docs/CLI.md promises, not 1.
            throw InterruptedError("interrupted during \(stage); finished work is kept, run the same command to continue")
        } catch { throw CLIError("\(error)") }
        let stages = PipelineRunner.stages
        if json {
            var o = JSONObject()
            o["run"] = .string(summary.run.path)
            o["nothing_to_do"] = .bool(summary.nothingToDo)
            o["done"] = .object(JSONObject(stages.map { ($0, .int(Int64(summary.done[$0] ?? 0))) }))
            o["wall_seconds"] = .double(summary.wallSeconds)
            o["work_seconds"] = .double(summary.workSeconds)
            if !summary.earlyWarning.isEmpty { o["early_warning"] = .array(summary.earlyWarning.map(\.json)) }
            print(JSONValue.object(o).serialized())
        } else if summary.nothingToDo {
            print("nothing to do: \(summary.run.path) is complete (misalign status \(summary.run.path))")
        } else {
            print(stages.map { "\($0) \(summary.done[$0] ?? 0)" }.joined(separator: ", ")
                  + String(format: "; %.1fs (%.1fs model and judge work); exports in %@", summary.wallSeconds, summary.workSeconds,
                           summary.run.appendingPathComponent("exports").path))
        }
        if !json && !summary.earlyWarning.isEmpty { print("early warning:\n" + summary.earlyWarning.flatMap(\.lines).joined(separator: "\n")) }
    }
}

/// `misalign status`: done and remaining per stage, with time and cost estimates.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what a run has done and what remains, with time and cost estimates.",
        discussion: """
        Estimates use the rates measured in this run (seconds per step, answer, verdict) and \
        judges.pricing for cost. Reads the store only; safe while the run is going.

        Examples:
          misalign status runs/study
          misalign status runs/study --json
        """)

    @Argument(help: "Run directory (the config's output).") var runDirectory: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let s: RunStatus
        do { s = try RunStatus.load(run: URL(fileURLWithPath: runDirectory)) } catch { throw CLIError("\(error)") }
        if json {
            print(JSONValue.array(s.stages.map { st in
                .object(JSONObject([("stage", .string(st.stage)), ("done", .int(Int64(st.done))),
                                    ("total", st.total.map { .int(Int64($0)) } ?? .null),
                                    ("seconds_left", st.secondsLeft.map { .double($0) } ?? .null),
                                    ("cost_spent", st.costSpent.map { .double($0) } ?? .null),
                                    ("cost_left", st.costLeft.map { .double($0) } ?? .null)]))
            }).serialized())
            return
        }
        print("\(s.run.path): \(s.state)")
        for st in s.stages {
            var line = st.stage.padding(toLength: 10, withPad: " ", startingAt: 0) + "\(st.done)/\(st.total.map(String.init) ?? "?")"
            if let left = st.secondsLeft, st.total.map({ st.done < $0 }) == true { line += "  ~\(Progress.duration(left)) left" }
            if let c = st.costSpent { line += String(format: "  spent %.4f", c) }
            if let c = st.costLeft, c > 0 { line += String(format: ", ~%.4f to go", c) }
            print(line)
        }
        if !s.failures.isEmpty { print("failures:\n" + s.failures.map { "  " + $0 }.joined(separator: "\n")) }
        if !s.calibrations.isEmpty {
            print("judge calibration (low / high band means):\n" + s.calibrations.map { "  " + $0.statusLine }.joined(separator: "\n"))
        }
        if !s.earlyWarning.isEmpty { print("early warning:\n" + s.earlyWarning.flatMap(\.lines).joined(separator: "\n")) }
    }
}

/// The pipeline's progress on stderr through the shared `ProgressBar` (a bar with rate and ETA
/// on a terminal, throttled plain lines otherwise, nothing with `--quiet`): one bar per stage
/// unit ("train medical/seed-0 (1/4)", "generate", ...), notes on their own lines.
final class ProgressPrinter: Sendable {
    let mode: ProgressBar.Mode
    /// The bar of the unit in progress and its label.
    private let state = Mutex<(bar: ProgressBar?, label: String)>((nil, ""))
    init(quiet: Bool) { mode = ProgressBar.mode(quiet: quiet) }

    func show(_ e: PipelineEvent) {
        guard mode != .silent else { return }
        let mode = self.mode
        state.withLock { s in
            switch e {
            case .note(let text):
                if mode == .bar, let bar = s.bar { bar.finish(); s = (nil, "") }
                Console.writeError(text + "\n")
            case .stage(let name, let done, let total):
                if name != s.label || s.bar == nil {
                    s.bar?.finish()
                    s = (ProgressBar(label: name, total: total, mode: mode), name)
                }
                s.bar?.update(done, total: total)
                if done == total { s.bar?.finish(); s = (nil, "") }
            }
        }
    }

    func finish() { state.withLock { s in s.bar?.finish(); s = (nil, "") } }
}
