import Testing
import Foundation
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

/// llm.c-style comparison: every |a - b| <= atol + rtol * |b|. Records the first offenders
/// and the largest difference when it fails.
func expectClose(_ got: UnsafeBufferPointer<Float>, _ want: [Float], rtol: Float = 1e-4, atol: Float = 1e-5,
                 _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard got.count == want.count else {
        Issue.record("\(label): \(got.count) values, expected \(want.count)", sourceLocation: sourceLocation)
        return
    }
    var bad: [String] = []
    var worst: Float = 0
    var count = 0
    for i in 0..<want.count {
        let d = abs(got[i] - want[i])
        worst = max(worst, d)
        if !(d <= atol + rtol * abs(want[i])) {
            count += 1
            if bad.count < 4 { bad.append("[\(i)] \(got[i]) vs \(want[i])") }
        }
    }
    if count > 0 {
        Issue.record("\(label): \(count) of \(want.count) values differ (max |diff| \(worst)); first: \(bad.joined(separator: ", "))",
                     sourceLocation: sourceLocation)
    }
}

func expectClose(_ got: FloatBuffer, _ want: [Float], rtol: Float = 1e-4, atol: Float = 1e-5, _ label: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(UnsafeBufferPointer(got.buffer), want, rtol: rtol, atol: atol, label, sourceLocation: sourceLocation)
}
