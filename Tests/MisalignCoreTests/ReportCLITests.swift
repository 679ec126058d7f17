import Foundation
import Testing
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

@Suite
struct ReportCLITests {
    @Test func simulateThenRenderTheSavedInputAsMarkdown() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = dir.appendingPathComponent("demo.html"), json = dir.appendingPathComponent("demo.json")
        let r = try CLI.run(["report", "--simulate", "--resamples", "40", "--output", html.path, "--save-input", json.path])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == html.path, "prints where the report is")
        let page = try String(contentsOf: html, encoding: .utf8)
        #expect(ReportFixtures.xmlError(page) == nil)
        for s in HTMLReport.sections { #expect(ReportFixtures.section(page, s.id) != nil, "\(s.id)") }
        #expect(page.contains("Simulated data."))

        // The saved input renders to the same page, and to Markdown.
        let again = dir.appendingPathComponent("again.html"), md = dir.appendingPathComponent("report.md")
        #expect(try CLI.run(["report", "--input", json.path, "--output", again.path]).status == 0)
        #expect(try String(contentsOf: again, encoding: .utf8) == page)
        let m = try CLI.run(["report", "--input", json.path, "--format", "md", "--output", md.path])
        #expect(m.status == 0, "\(m.err)")
        let text = try String(contentsOf: md, encoding: .utf8)
        #expect(text.contains("## Overview") && text.contains("|---|"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty, "atomic writes leave no temp files")
    }

    @Test func badInvocationsSayWhatToDo() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let none = try CLI.run(["report"])
        #expect(none.status != 0 && none.err.contains("--input"))
        let both = try CLI.run(["report", "--simulate", "--input", "x.json"])
        #expect(both.status != 0 && both.err.contains("exactly one"))
        let run = try CLI.run(["report", dir.path])
        #expect(run.status != 0 && run.err.contains("misalign run") && run.err.contains(dir.path), "\(run.err)")
        let missing = try CLI.run(["report", "--input", dir.appendingPathComponent("nope.json").path])
        #expect(missing.status != 0 && missing.err.contains("nope.json"))
        let bad = dir.appendingPathComponent("bad.json")
        try Data(#"{"format": 1, "title": 3}"#.utf8).write(to: bad)
        let wrong = try CLI.run(["report", "--input", bad.path])
        #expect(wrong.status != 0 && wrong.err.contains("title"), "\(wrong.err)")
        let fmt = try CLI.run(["report", "--simulate", "--format", "pdf"])
        #expect(fmt.status != 0 && fmt.err.contains("html or md"))
    }
}
