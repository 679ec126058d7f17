import Foundation
import MisalignKernels

/// The report as one self-contained HTML file: inline CSS and SVG, no script, no network.
/// The document is also well-formed XML (every element closed, only XML's five entities), so
/// it can be checked with any XML parser. Every text from the input is escaped.
public enum HTMLReport {
    /// The report's sections in page order: (anchor id, heading).
    public static let sections: [(id: String, title: String)] = [
        ("overview", "Overview"),
        ("curves", "Signals over training"),
        ("lead-lag", "Onsets and lead-lag"),
        ("comparison", "Dataset comparison"),
        ("controls", "Levels against their control"),
        ("agreement", "Judges: calibration and agreement"),
        ("training", "Training loss and learning rate"),
        ("samples", "Sample answers"),
        ("reproducibility", "Reproducibility"),
    ]

    public static func render(_ input: ReportInput) -> String {
        let e = Markup.escape
        var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
        h += "<meta name=\"generator\" content=\"misalign \(e(MisalignVersion.string))\"/>\n"
        h += "<title>\(e(input.title))\(input.simulated ? " (simulated)" : "")</title>\n<style>\n\(css)</style>\n</head>\n<body>\n<main>\n"
        h += "<header>\n<h1>\(e(input.title))</h1>\n"
        var sub: [String] = []
        if let r = input.runName { sub.append("run <code>\(e(r))</code>") }
        sub.append("misalign \(e(MisalignVersion.string))")
        sub.append("\(input.runs.count) run\(input.runs.count == 1 ? "" : "s")")
        h += "<p class=\"subtitle\">\(sub.joined(separator: " · "))</p>\n"
        if input.simulated {
            h += "<p class=\"simulated\"><strong>Simulated data.</strong> Every score, onset, loss and answer on this page comes "
                + "from a simulation with planted onsets, not from fine-tuning a model. It shows what a report looks like.</p>\n"
        }
        h += "</header>\n<nav class=\"toc\">\n<h2>Contents</h2>\n<ol>\n"
        for s in sections { h += "<li><a href=\"#\(s.id)\">\(s.title)</a></li>\n" }
        h += "</ol>\n</nav>\n"
        h += section("overview", overview(input))
        h += section("curves", curves(input))
        h += section("lead-lag", leadLag(input) + activationSignals(input))
        h += section("comparison", comparison(input))
        h += section("controls", controls(input))
        h += section("agreement", calibration(input) + "<h3>Agreement</h3>\n" + agreement(input))
        h += section("training", training(input))
        h += section("samples", samples(input))
        h += section("reproducibility", reproducibility(input))
        h += "<footer>Written by misalign \(e(MisalignVersion.string)). Steps are optimizer steps; scores are the judges&#39; 0-100 scale.</footer>\n"
        return h + "</main>\n</body>\n</html>\n"
    }

    static func section(_ id: String, _ body: String) -> String {
        let title = sections.first { $0.id == id }!.title
        return "<section id=\"\(id)\">\n<h2>\(title)</h2>\n\(body)</section>\n"
    }

    /// A table whose cells are HTML fragments the caller has already escaped. Columns in
    /// `numeric` are right-aligned.
    static func table(_ header: [String], _ rows: [[String]], numeric: Set<Int> = [], caption: String? = nil) -> String {
        var t = "<div class=\"table-wrap\"><table>\n"
        if let caption { t += "<caption>\(caption)</caption>\n" }
        t += "<thead><tr>" + header.map { "<th>\($0)</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for r in rows {
            t += "<tr>" + r.enumerated().map { i, c in numeric.contains(i) ? "<td class=\"num\">\(c)</td>" : "<td>\(c)</td>" }.joined() + "</tr>\n"
        }
        return t + "</tbody></table></div>\n"
    }

    static func figure(_ svgs: [String], caption: String, columns: Int = 1) -> String {
        "<figure class=\"cols-\(columns)\">\n<div class=\"charts\">\n" + svgs.joined(separator: "\n")
            + "\n</div>\n<figcaption>\(caption)</figcaption>\n</figure>\n"
    }

    /// Chart width in CSS pixels for a grid of `columns` in the 1180 px content column, so
    /// charts are drawn at their display size and text is the same size in every figure.
    static func chartWidth(columns: Int) -> Double { columns >= 3 ? 384 : 583 }

    static func empty(_ text: String) -> String { "<p class=\"empty\">\(text)</p>\n" }

    static let css = """
    :root { --ink: #1d1d1f; --muted: #5f6368; --rule: #d9d9d9; --accent: #8e2a1f; }
    * { box-sizing: border-box; }
    body { margin: 0; background: #f6f6f4; color: var(--ink); font: 15px/1.55 Georgia, "Times New Roman", serif; }
    main { max-width: 1260px; margin: 0 auto; padding: 28px 40px 48px; background: #fff; }
    h1 { font: 600 28px/1.2 Helvetica, Arial, sans-serif; margin: 8px 0 4px; }
    h2 { font: 600 21px/1.3 Helvetica, Arial, sans-serif; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
    h3 { font: 600 16px/1.3 Helvetica, Arial, sans-serif; margin: 24px 0 8px; }
    .subtitle { color: var(--muted); margin: 0 0 12px; font-family: Helvetica, Arial, sans-serif; font-size: 13px; }
    .simulated { border: 2px solid #b9770e; background: #fef5e7; padding: 10px 14px; border-radius: 4px; }
    .badge { display: inline-block; font: 600 11px/1.6 Helvetica, Arial, sans-serif; color: #7e5109; background: #fdebd0;
             border: 1px solid #b9770e; border-radius: 3px; padding: 0 6px; vertical-align: middle; margin-left: 6px; }
    .uncalibrated { border: 2px solid #a93226; background: #fdedec; padding: 10px 14px; border-radius: 4px; }
    .badge.warn { color: #922b21; background: #fadbd8; border-color: #a93226; }
    .toc { border: 1px solid var(--rule); padding: 4px 18px 8px; margin: 16px 0; max-width: 460px; }
    .toc h2 { border: none; margin: 8px 0 2px; font-size: 15px; }
    .toc ol { margin: 4px 0; padding-left: 22px; font-family: Helvetica, Arial, sans-serif; font-size: 14px; }
    a { color: #1a5490; }
    .headline { font-size: 16px; }
    .table-wrap { overflow-x: auto; margin: 10px 0 16px; }
    table { border-collapse: collapse; font: 13px/1.4 Helvetica, Arial, sans-serif; }
    caption { text-align: left; color: var(--muted); padding-bottom: 4px; caption-side: top; }
    th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
    thead th { border-bottom: 2px solid var(--ink); font-weight: 600; }
    td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
    figure { margin: 14px 0 22px; }
    .charts { display: grid; gap: 10px 14px; }
    figure.cols-1 .charts { grid-template-columns: minmax(0, 583px); }
    figure.cols-2 .charts { grid-template-columns: repeat(2, 1fr); }
    figure.cols-3 .charts { grid-template-columns: repeat(3, 1fr); }
    .charts svg { width: 100%; height: auto; display: block; }
    figcaption { color: var(--muted); font-size: 13.5px; margin-top: 6px; }
    .empty { color: var(--muted); font-style: italic; }
    .answer { border: 1px solid var(--rule); border-radius: 4px; margin: 12px 0; padding: 8px 12px; page-break-inside: avoid; }
    .answer .meta { font: 12px Helvetica, Arial, sans-serif; color: var(--muted); }
    .answer .q { font-weight: bold; margin: 4px 0; }
    .answer pre, pre.config { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word;
             font: 12.5px/1.45 Menlo, Consolas, monospace; background: #f7f7f7; padding: 8px 10px; margin: 6px 0; }
    .scores { font: 12px Helvetica, Arial, sans-serif; }
    code { font: 12.5px Menlo, Consolas, monospace; }
    footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule); padding-top: 8px; }
    @media print {
      body { background: #fff; font-size: 11pt; }
      main { max-width: none; padding: 0; }
      .toc { page-break-after: always; }
      section { page-break-before: always; }
      figure, table, .answer { page-break-inside: avoid; }
      a { color: inherit; text-decoration: none; }
    }
    @media (max-width: 900px) { figure.cols-2 .charts, figure.cols-3 .charts { grid-template-columns: 1fr; } }

    """
}
