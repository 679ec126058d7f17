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

/// Agreement statistics against scipy and the `krippendorff` package
/// (Tests/Fixtures/judge/make_agreement_cases.py).
@Suite struct JudgeAgreementTests {
    @Test func matchesTheReferenceImplementations() throws {
        let cases = try JSONValue.parse(Data(contentsOf: Fixtures.url("judge/agreement_cases.json"))).arrayValue!
        #expect(cases.count >= 5)
        for c in cases {
            let name = c["name"]!.stringValue!
            let a = c["a"]!.arrayValue!.map(\.doubleValue), b = c["b"]!.arrayValue!.map(\.doubleValue)
            let s = Agreement.compare(a, b)
            #expect(s.n == c["n"]!.intValue!, "\(name)")
            func close(_ got: Double?, _ key: String) {
                let want = c[key]!.doubleValue
                if let want, let got { #expect(abs(got - want) < 1e-9, "\(name) \(key): \(got) vs \(want)") }
                else { #expect(got == nil && want == nil, "\(name) \(key): \(String(describing: got)) vs \(String(describing: want))") }
            }
            close(s.pearson, "pearson")
            close(s.spearman, "spearman")
            close(s.meanAbsoluteDifference, "mean_abs_diff")
            close(s.shareDifferingBy20, "share_diff_20")
            close(s.krippendorffAlpha, "alpha_interval")
            close(s.cohenKappa, "cohen_kappa_50")
        }
    }

    @Test func undefinedStatisticsAreNil() {
        let s = Agreement.compare([50, 50, 50], [10, 20, nil])
        #expect(s.n == 2 && s.pearson == nil && s.spearman == nil)
        #expect(Agreement.compare([nil], [1]).meanAbsoluteDifference == nil)
    }
}
