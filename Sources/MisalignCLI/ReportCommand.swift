import ArgumentParser
import Foundation
import MisalignCore
import MisalignTesting

/// `misalign report`: renders a run's results as one self-contained HTML page or a Markdown summary.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the study's report: curves, onsets, lead-lag, comparison, judges, training, answers.",
        discussion: """
        The HTML report is one file with inline SVG figures and CSS: no JavaScript, no network, \
        printable. --format md writes a Markdown summary with the same tables and no figures.

        Input is a run folder (RUN_DIR, the `output` of `misalign run`; read from its \
        store.sqlite, also while the run is in progress), a saved report input (--input FILE, JSON \
        written by --save-input), or --simulate for a complete report from simulated scores, \
        clearly marked as simulated.

        The file is written atomically; its path is printed on stdout (--json: \
        {"path": ..., "format": ...}). --simulate shows the bootstrap's progress on stderr.

        Examples:
          misalign report runs/study                      # writes runs/study/report.html
          misalign report runs/study --format md --output summary.md
          misalign report --simulate --output demo.html
          misalign report --simulate --save-input report.json --output demo.html
          misalign report --input report.json --format md --output report.md
        """)

    @Argument(help: "A run folder (the `output` of `misalign run`).")
    var runDirectory: String?

    @Option(help: "A saved report input (JSON).")
    var input: String?

    @Flag(help: "Build the report from simulated scores (two datasets x three seeds).")
    var simulate = false

    @Option(help: "html or md: one self-contained page with figures, or a Markdown summary.")
    var format: ReportFormat = .html

    @Option(name: .customLong("output"), help: "Where to write the report (default: RUN_DIR/report.html, or report.html here; .md for --format md).")
    var outputPath: String?

    @Option(name: .customLong("save-input"), help: "Also write the report input as JSON here (re-render later with --input).")
    var saveInput: String?

    @Option(help: "A note shown in the overview (repeatable), e.g. what in the run is a stand-in.")
    var note: [String] = []

    @Option(parsing: .unconditional, help: "With --simulate: bootstrap resamples for onsets and bands.")
    var resamples: Int = 500

    @OptionGroup var output: OutputOptions

    func validate() throws {
        let sources = [runDirectory != nil, input != nil, simulate].filter { $0 }.count
        if sources != 1 { throw ValidationError("give exactly one of RUN_DIR, --input FILE or --simulate") }
        if resamples < 0 { throw ValidationError("--resamples must be 0 or more") }
    }

    func run() throws {
        var report: ReportInput
        if let dir = runDirectory {
            report = try ReportInput.load(runDirectory: URL(fileURLWithPath: dir), options: RunReportOptions())
        } else if let path = input {
            report = try ReportInput.load(jsonAt: URL(fileURLWithPath: path))
        } else {
            let bar = ProgressBar(label: "bootstrap resamples", total: resamples, mode: resamples > 0 ? output.progressMode : .silent)
            report = try ReportDemo.simulated(resamples: resamples) { done, total in bar.update(done, total: total) }
            bar.finish()
        }
        report.notes = note + report.notes
        if let path = saveInput { try report.save(jsonTo: URL(fileURLWithPath: path)) }
        let text = format == .md ? MarkdownReport.render(report) : HTMLReport.render(report)
        let url = URL(fileURLWithPath: outputPath ?? ((runDirectory.map { $0 + "/" } ?? "") + "report.\(format.rawValue)"))
        try AtomicFile.write(Data(text.utf8), to: url)
        print(output.json ? JSONValue.object(JSONObject([("path", .string(url.path)), ("format", .string(format.rawValue))])).serialized() : url.path)
    }
}
