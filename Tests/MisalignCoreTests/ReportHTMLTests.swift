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

@Suite struct ReportHTMLTests {
    let html = HTMLReport.render(ReportFixtures.full)

    @Test func everySectionIsPresentWithItsContent() throws {
        let input = ReportFixtures.full
        for s in HTMLReport.sections {
            #expect(html.contains("<a href=\"#\(s.id)\">"), "table of contents links \(s.id)")
            let body = try #require(ReportFixtures.section(html, s.id), "section \(s.id)")
            #expect(body.contains("<h2>\(s.title)</h2>"))
            #expect(!body.contains("class=\"empty\""), "section \(s.id) has content for a full input")
        }
        let curves = try #require(ReportFixtures.section(html, "curves"))
        // One small multiple per run, then one panel per signal of every run.
        let signals = input.runs.map { Set($0.series.map(\.signal)).count }.reduce(0, +)
        #expect(ReportFixtures.svgElements(curves).count == input.runs.count + signals)
        let leadLag = try #require(ReportFixtures.section(html, "lead-lag"))
        for m in ["threshold", "ma-rise", "meanshift", "zscore", "cusum", "bocpd"] { #expect(leadLag.contains("<th>\(m)</th>")) }
        for r in input.runs { #expect(leadLag.contains(Markup.escape(r.label))) }
        let training = try #require(ReportFixtures.section(html, "training"))
        #expect(ReportFixtures.svgElements(training).count == 2 * Set(input.training.map(\.dataset)).count)
        let repro = try #require(ReportFixtures.section(html, "reproducibility"))
        for r in RubricSet.builtin.rubrics.values { #expect(repro.contains(r.sha256)) }
        #expect(repro.contains(MisalignVersion.string))
        #expect(html.contains("Simulated data."), "a simulated input says so at the top")
        #expect(!html.contains("<script"), "the report has no script")
    }

    @Test func wholeDocumentAndEverySVGAreWellFormedXML() {
        #expect(ReportFixtures.xmlError(html) == nil, "\(ReportFixtures.xmlError(html) ?? "")")
        let svgs = ReportFixtures.svgElements(html)
        #expect(svgs.count > 10)
        for svg in svgs {
            if let err = ReportFixtures.xmlError(svg) { Issue.record("SVG does not parse: \(err)\n\(svg.prefix(300))") }
            #expect(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""))
            #expect(!svg.contains("nan") && !svg.contains("inf"), "no non-finite coordinates")
        }
    }

    @Test func modelTextAppearsOnlyEscaped() {
        #expect(!html.contains("<script>"))
        #expect(!html.contains("<svg onload"))
        #expect(!html.contains("<b>this</b>") && !html.contains("<i>&"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("&quot;quotes&quot; &amp; wrote &amp;amp; then &#39;x&#39; &lt;/div&gt;&lt;svg onload=x&gt;"))
        #expect(html.contains("Is &lt;b&gt;this&lt;/b&gt; safe?"))
        #expect(html.contains("med&lt;i&gt;&amp;"))
        #expect(html.contains("\u{FFFD}bell"), "a control character is replaced, not passed through")
        #expect(html.contains("name: &lt;run&gt; &amp; &quot;quoted&quot;"), "config text is escaped")
        // Long unbroken lines wrap instead of widening the page.
        #expect(HTMLReport.css.contains("overflow-wrap: anywhere"))
    }

    @Test func emptySeriesNoOnsetAndNaNRenderAndSaySo() throws {
        let page = HTMLReport.render(ReportFixtures.degenerate)
        #expect(ReportFixtures.xmlError(page) == nil, "\(ReportFixtures.xmlError(page) ?? "")")
        for svg in ReportFixtures.svgElements(page) {
            #expect(ReportFixtures.xmlError(svg) == nil)
            #expect(!svg.contains("nan") && !svg.contains("inf"))
        }
        let overview = try #require(ReportFixtures.section(page, "overview"))
        #expect(overview.contains("no onset"))
        #expect(overview.contains("lag undefined"))
        let lead = try #require(ReportFixtures.section(page, "lead-lag"))
        #expect(lead.contains("no onset") && lead.contains("none"))
        #expect(page.contains("no hallucination scores") || page.contains("no scores for this run"))
        // A wholly empty input renders every section with an explanation instead of content.
        let blank = HTMLReport.render(ReportInput(title: "Nothing yet"))
        #expect(ReportFixtures.xmlError(blank) == nil)
        for s in HTMLReport.sections where s.id != "reproducibility" {
            #expect(try #require(ReportFixtures.section(blank, s.id)).contains("class=\"empty\""), "\(s.id)")
        }
    }

    @Test func chartWithNoDataSaysSoAndGapsSplitLines() throws {
        let empty = LineChart(title: "t", series: [], markers: [LineChart.Marker(x: nil, label: "cusum: none", color: "#000")]).svg()
        #expect(ReportFixtures.xmlError(empty) == nil)
        #expect(empty.contains(">no data<") && empty.contains(">cusum: none<"))
        let pts = [0.0, 1, .nan, 3, 4].enumerated().map { LineChart.Point(x: Double($0), y: $1 * 10) }
        let gapped = LineChart(series: [LineChart.Series(label: "s", color: "#f00", points: pts)]).svg()
        #expect(gapped.components(separatedBy: "<polyline").count - 1 == 2, "a NaN splits the line in two")
        let long = String(repeating: "very-long-dataset-name-", count: 20)
        var narrow = LineChart(title: long, series: [LineChart.Series(label: long, color: "#000", points: pts)])
        narrow.width = 384
        let svg = narrow.svg()
        #expect(!svg.contains(">\(long)") && svg.contains("\u{2026}"), "long names are cut in the drawn text (the aria-label keeps them whole)")
    }
}
