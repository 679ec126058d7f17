import Foundation

extension ReportCharts {
    /// The held-out loss at checkpoints (dashed, one line per seed in its training line's colour).
    static func heldOutSeries(_ curves: [TrainingCurve]) -> [LineChart.Series] {
        curves.enumerated().compactMap { i, t in
            let pts = t.points.compactMap { p in p.heldOutLoss.map { LineChart.Point(x: Double(p.step), y: $0) } }
            guard !pts.isEmpty else { return nil }
            return LineChart.Series(label: (t.seed.map { "seed \($0)" } ?? t.dataset) + " held-out", color: palette[i % palette.count],
                                    points: pts, dashed: true)
        }
    }
}

extension HTMLReport {
    /// The training figure's note on the dashed held-out lines, when any run has them.
    static func heldOutCaption(_ curves: [TrainingCurve]) -> String {
        curves.contains { $0.points.contains { $0.heldOutLoss != nil } }
            ? " Dashed: the loss of the held-out examples (training.holdout) at each checkpoint, same tokens and masking as training, no dropout."
            : ""
    }
}
