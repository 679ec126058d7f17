// EmbedPipeline: run a whole Misalign experiment from your own program, then read the result.
//
//   swift run -c release EmbedPipeline study.yaml
//
// The experiment is the same YAML file `misalign run` takes (`misalign init study.yaml` writes a
// commented one). `PipelineRunner` trains, generates, judges, aggregates and detects, skipping
// every unit its run store already holds, so running this program again after a crash (or a
// Ctrl-C) resumes where it stopped, and on a finished run does nothing. Afterwards the run folder
// is read back as a `ReportInput`, the same data `misalign report` renders.
import Foundation
import MisalignCore

let args = CommandLine.arguments.dropFirst()
guard let configPath = args.first else {
    print("usage: EmbedPipeline CONFIG.yaml")
    exit(2)
}

do {
    // 1. The experiment: typed, checked settings (errors name the file, line and key).
    let experiment = try Experiment.load(from: URL(fileURLWithPath: configPath))

    // 2. Run it, with our own progress display: one line per stage as it finishes a unit.
    let runner = PipelineRunner(experiment) { event in
        switch event {
        case .stage(let name, let done, let total) where done == total:
            print("\(name): \(done)/\(total) done")
        case .note(let text):
            print("note: \(text)")
        default:
            break
        }
    }
    let summary = try runner.runSync()
    if summary.nothingToDo {
        print("nothing to do: the run in \(summary.run.path) is complete")
    } else {
        let work = PipelineRunner.stages.map { "\($0) \(summary.done[$0] ?? 0)" }.joined(separator: ", ")
        print("did: \(work) in \(String(format: "%.1f", summary.wallSeconds)) s")
    }

    // 3. Read the results back: per run, when hallucination and evil start to rise, and the lag.
    let report = try ReportInput.load(runDirectory: summary.run)
    for run in report.runs {
        func onset(_ signal: String) -> String {
            run.onset(signal)?.consensusStep.map { String(format: "step %.1f", $0) } ?? "no onset"
        }
        let lag = run.lag.steps.map { String(format: "%+.1f steps", $0) } ?? "undefined"
        print("\(run.label): \(report.leadSignal) \(onset(report.leadSignal)), \(report.lagSignal) \(onset(report.lagSignal)), lag \(lag)")
    }

    // 4. Write the HTML report where we like (atomically, as everything Misalign writes).
    let page = summary.run.appendingPathComponent("embedded-report.html")
    try AtomicFile.write(Data(HTMLReport.render(report).utf8), to: page)
    print("report: \(page.path)")
} catch {
    print("error: \(error)")
    exit(1)
}
