import Foundation
import MisalignChangePoint
import MisalignJudge

extension Experiment {
    /// `detection:`; `judges` are the canonical judge names, for `judge` (a judge, or `mean`
    /// with two or more judges). Without the section: today's rules, the first judge.
    static func parseDetection(_ n: YAMLNode?, judges: [String], file: String) throws(PipelineError) -> DetectionSettings {
        var d = DetectionSettings()
        if let n = try n?.mapping() { try readSection(n, into: &d) }
        if let j = d.judge {
            if j == DetectionSettings.meanJudge {
                guard judges.count >= 2 else {
                    throw PipelineError.config(file: file, key: "detection.judge", line: nil,
                                               reason: "`mean` averages two or more judges; judges.models lists \(judges.count)")
                }
            } else if !judges.contains(j) {
                throw PipelineError.config(file: file, key: "detection.judge", line: nil, reason: "`\(j)` is not one of judges.models (or `mean`)")
            }
        }
        d.judge = d.judge ?? judges.first
        return d
    }
}
