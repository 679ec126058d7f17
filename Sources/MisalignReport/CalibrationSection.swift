import Foundation
import MisalignPipeline

/// One judge's calibration on one trait, as the run stored it (`StoredCalibration`), as a
/// plain, encodable value.
public struct JudgeCalibrationEntry: Codable, Sendable, Equatable {
    public var judge: String
    public var trait: String
    /// `pass`, `fail`, `exempt` or `unavailable` (no item bands the trait).
    public var status: String
    /// The set scored (`built-in` or a file's path); empty when exempt.
    public var set: String
    public var auc: Double?
    public var meanLow: Double?
    public var meanHigh: Double?
    public var lowScored: Int
    public var highScored: Int
    public var lowItems: Int
    public var highItems: Int
    public var unscorableFraction: Double?
    /// The thresholds missed (empty unless failed).
    public var failures: [String]
    /// The exemption's reason, or why it could not be calibrated.
    public var note: String

    public init(judge: String, trait: String, status: String, set: String = "", auc: Double? = nil, meanLow: Double? = nil,
                meanHigh: Double? = nil, lowScored: Int = 0, highScored: Int = 0, lowItems: Int = 0, highItems: Int = 0,
                unscorableFraction: Double? = nil, failures: [String] = [], note: String = "") {
        self.judge = judge; self.trait = trait; self.status = status; self.set = set; self.auc = auc
        self.meanLow = meanLow; self.meanHigh = meanHigh; self.lowScored = lowScored; self.highScored = highScored
        self.lowItems = lowItems; self.highItems = highItems; self.unscorableFraction = unscorableFraction
        self.failures = failures; self.note = note
    }

    public init(_ s: StoredCalibration) {
        let f = s.figures
        self.init(judge: s.judge, trait: s.trait, status: s.status.rawValue, set: s.set, auc: f?.auc, meanLow: f?.meanLow,
                  meanHigh: f?.meanHigh, lowScored: f?.lowScored ?? 0, highScored: f?.highScored ?? 0, lowItems: f?.lowItems ?? 0,
                  highItems: f?.highItems ?? 0, unscorableFraction: f?.unscorableFraction, failures: f?.failures ?? [], note: s.note)
    }

    /// Failed, or could not be calibrated: scores to read as unverified.
    public var untrusted: Bool { status == "fail" || status == "unavailable" }
}

extension ReportInput {
    /// The untrusted calibrations behind `signal`'s main curves (those of `curveJudges`, or of
    /// `judge` when given: a by-judge curve).
    public func untrustedCalibrations(signal: String, judge: String? = nil) -> [JudgeCalibrationEntry] {
        let judges = judge.map { $0 == DetectionSettings.meanJudge ? (curveJudges ?? []) : [$0] } ?? curveJudges
        return (calibration ?? []).filter { $0.untrusted && $0.trait == signal && (judges?.contains($0.judge) ?? true) }
    }

    /// The short mark shown beside a marked signal ("failed calibration"), nil when trusted.
    public func calibrationMark(signal: String, judge: String? = nil) -> String? {
        let bad = untrustedCalibrations(signal: signal, judge: judge)
        if bad.isEmpty { return nil }
        return bad.contains { $0.status == "fail" } ? "failed calibration" : "not calibrated"
    }

    /// Signals of the main curves that are marked, in order.
    var markedSignals: [String] {
        ReportCharts.uniqueInOrder(runs.flatMap { $0.series.map(\.signal) + $0.onsets.map(\.signal) }).filter { calibrationMark(signal: $0) != nil }
    }
}

extension HTMLReport {
    /// Each marked signal's mark, for the charts' legends.
    static func marks(_ input: ReportInput) -> [String: String] {
        Dictionary(uniqueKeysWithValues: input.markedSignals.compactMap { s in input.calibrationMark(signal: s).map { (s, $0) } })
    }

    /// A badge after a signal name whose judge failed calibration ("" otherwise).
    static func calibrationBadge(_ input: ReportInput, _ signal: String, judge: String? = nil) -> String {
        input.calibrationMark(signal: signal, judge: judge).map { "<span class=\"badge warn\">\($0)</span>" } ?? ""
    }

    /// The overview's warning when a curve's judge failed calibration.
    static func calibrationWarning(_ input: ReportInput) -> String {
        let e = Markup.escape
        let marked = input.markedSignals
        guard !marked.isEmpty else { return "" }
        let who = marked.flatMap { input.untrustedCalibrations(signal: $0) }.map { c in
            "<code>\(e(c.judge))</code> on <em>\(e(c.trait))</em>" + (c.status == "fail" ? " (AUC \(Markup.number(c.auc, digits: 3)))" : " (not calibrated)")
        }
        return "<p class=\"uncalibrated\"><strong>Judge calibration failed.</strong> " + who.joined(separator: ", ")
            + ": these scores did not tell the calibration set&#39;s high answers from its low ones. Every curve, onset and lag "
            + "built on them is marked <span class=\"badge warn\">failed calibration</span>; read them as unverified "
            + "(<a href=\"#agreement\">figures</a>).</p>\n"
    }

    /// The calibration table of the judges section.
    static func calibration(_ input: ReportInput) -> String {
        let e = Markup.escape
        guard let rows = input.calibration, !rows.isEmpty else {
            return "<h3>Calibration</h3>\n" + empty("No judge calibration recorded for this run (judges.calibration: off, or a run judged before calibration existed).")
        }
        var h = "<h3>Calibration</h3>\n<p>Before judging, each judge scored a labelled calibration set: answers that should score low "
        h += "and answers that should score high on each trait. AUC is the chance a high answer outscores a low one (0.5: no better "
        h += "than a coin); the band means should be far apart. A judge must reach AUC &#8805; 0.85, band means 30 points apart, "
        h += "at most 25% unscored and 5 scores per band.</p>\n"
        h += table(["judge", "trait", "verdict", "AUC", "mean low", "mean high", "scored low / high", "unscored", "set", "why"], rows.map { c in
            let verdict: String = switch c.status {
            case "pass": "pass"
            case "fail": "<strong>FAIL</strong>"
            case "exempt": "exempt"
            default: "<strong>not calibrated</strong>"
            }
            let why = c.status == "fail" ? c.failures.joined(separator: "; ") : c.note
            return [e(c.judge), e(c.trait), verdict, Markup.number(c.auc, digits: 3), Markup.number(c.meanLow), Markup.number(c.meanHigh),
                    c.status == "exempt" || c.status == "unavailable" ? "-" : "\(c.lowScored)/\(c.lowItems) · \(c.highScored)/\(c.highItems)",
                    c.unscorableFraction.map { Markup.number($0 * 100, digits: 0) + "%" } ?? "-", e(c.set), e(why)]
        }, numeric: [3, 4, 5, 6, 7], caption: "Each judge's calibration per trait (Docs/Judges.md, Calibration)")
        return h
    }
}

extension MarkdownReport {
    static func calibration(_ input: ReportInput) -> String {
        let c = Markup.markdownCell
        var m = "## Judge calibration\n\n"
        guard let rows = input.calibration, !rows.isEmpty else { return m + "No judge calibration recorded for this run.\n\n" }
        let marked = input.markedSignals
        if !marked.isEmpty {
            m += "> **Judge calibration failed** on " + marked.map { "*\(c($0))*" }.joined(separator: ", ")
                + ": curves, onsets and lags of these signals are marked *(failed calibration)*; read them as unverified.\n\n"
        }
        m += table(["judge", "trait", "verdict", "AUC", "mean low", "mean high", "unscored", "why"], rows.map { r in
            [c(r.judge), c(r.trait), r.status == "fail" ? "**FAIL**" : r.status == "unavailable" ? "**not calibrated**" : r.status,
             Markup.number(r.auc, digits: 3), Markup.number(r.meanLow), Markup.number(r.meanHigh),
             r.unscorableFraction.map { Markup.number($0 * 100, digits: 0) + "%" } ?? "-", c(r.status == "fail" ? r.failures.joined(separator: "; ") : r.note)]
        }, empty: "")
        return m
    }

    /// " *(failed calibration)*" after a marked signal.
    static func mark(_ input: ReportInput, _ signal: String) -> String {
        input.calibrationMark(signal: signal).map { " *(\($0))*" } ?? ""
    }
}
