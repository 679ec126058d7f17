import Foundation

/// Any `ChangePointDetector` as an `OnsetRule`, the one kind of detector onset analysis, the
/// pipeline and the report run: the onset is the first change point whose mean shift goes the
/// way the signal goes wrong (up for `direction: .up`), nil when the detector finds none such.
/// The rule joins the consensus and the bootstrap like the built-in rules.
///
/// ```swift
/// let rule = ChangePointOnsetRule(name: "pelt", detector: Pelt(penalty: 10))
/// var config = OnsetConfig(); config.rules.append(rule)
/// ```
public struct ChangePointOnsetRule<D: ChangePointDetector & Sendable>: OnsetRule {
    public let name: String
    public let detector: D
    /// A change whose mean shift is smaller than this (in the signal's units) is not an onset.
    public var minShift: Double

    public init(name: String, detector: D, minShift: Double = 0) {
        self.name = name; self.detector = detector; self.minShift = minShift
    }

    public func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        try SeriesCheck.finite(x, series: series)
        let segmentation = try detector.detect(x, name: series)
        return segmentation.changePoints.first { direction.orient($0.meanShift) > minShift }?.index
    }
}
