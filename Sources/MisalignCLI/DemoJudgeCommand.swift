import ArgumentParser
import Foundation
import MisalignCore
import MisalignTesting

/// `misalign demo-judge RUN_DIR`: the stand-in judge of `make demo` (hidden). Serves an
/// OpenAI-compatible endpoint on 127.0.0.1 whose scores are simulated on a planted schedule
/// (`PlantedScheduleJudge`), prints its base URL, and serves until killed.
struct DemoJudgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-judge",
        abstract: "Stand-in judge for `make demo`: simulated scores on a planted schedule (not a real judge).",
        shouldDisplay: false)

    @Argument(help: "The run folder whose answers it scores.") var runDirectory: String
    @Option(help: "Also write the base URL to this file (the demo script reads it).") var urlFile: String?
    @Option(help: "The run's config: its traits' rubrics (trait files, rubric files) are recognised too; built-in rubrics only without it.")
    var config: String?

    func run() throws {
        var rubrics = RubricSet.builtin.rubrics.values.sorted { $0.name < $1.name }
        if let config {
            do { rubrics = Array(try Experiment.load(from: URL(fileURLWithPath: config)).judges.resolvedRubrics().values) + rubrics } catch {
                throw CLIError("\(error)")
            }
        }
        let judge = PlantedScheduleJudge(run: URL(fileURLWithPath: runDirectory), rubrics: rubrics)
        let server: MockJudgeServer
        do { server = try MockJudgeServer(recordRequests: false, handler: judge.handler) } catch { throw CLIError("\(error)") }
        if let f = urlFile { try AtomicFile.write(Data(server.baseURL.utf8), to: URL(fileURLWithPath: f)) }
        FileHandle.standardOutput.write(Data((server.baseURL + "\n").utf8))
        while true { sleep(3600) }
    }
}
