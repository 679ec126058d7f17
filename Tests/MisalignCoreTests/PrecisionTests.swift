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

/// bf16/f16 <-> f32 against torch (bf16) and numpy (f16), bit for bit, on every 16-bit pattern
/// and on ~100k f32 edge, tie and random patterns (Tests/Fixtures/safetensors/make_fixtures.py).
@Suite struct PrecisionTests {
    static let file = try! SafeTensorsFile(url: Fixtures.url("safetensors/conversion.safetensors"))

    func bits(_ f: [Float]) -> [UInt32] { f.map(\.bitPattern) }

    @Test func bf16ToF32IsExactForEveryPattern() throws {
        let input = u16s(try Self.file.tensor(named: "all16"))
        let expected = u32s(try Self.file.tensor(named: "bf16_to_f32"))
        let got = bits(Precision.bf16ToF32(input))
        let mismatches = zip(got, expected).filter { $0 != $1 }.count
        #expect(mismatches == 0, "\(mismatches) of 65536 bf16 patterns differ from torch")
    }

    @Test func f16ToF32IsExactForEveryPattern() throws {
        let input = u16s(try Self.file.tensor(named: "all16"))
        let expected = u32s(try Self.file.tensor(named: "f16_to_f32"))
        let got = Precision.f16ToF32(input)
        var mismatches = 0
        for i in 0..<input.count {
            let e = Float(bitPattern: expected[i])
            // NaN payloads are not promised (numpy keeps signalling NaNs, hardware quiets them).
            if e.isNaN { if !got[i].isNaN { mismatches += 1 } } else if got[i].bitPattern != expected[i] { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(mismatches) of 65536 f16 patterns differ from numpy")
    }

    @Test func f32ToBF16RoundsLikeTorch() throws {
        let input = u32s(try Self.file.tensor(named: "f32")).map { Float(bitPattern: $0) }
        let expected = u16s(try Self.file.tensor(named: "f32_to_bf16"))
        let got = Precision.f32ToBF16(input)
        let bad = (0..<input.count).filter { got[$0] != expected[$0] }
        #expect(bad.count == 0, "\(bad.count) of \(input.count) differ; first: \(bad.prefix(3).map { String(input[$0].bitPattern, radix: 16) })")
        #expect(input.count > 90_000)
    }

    @Test func f32ToF16RoundsLikeNumpy() throws {
        let input = u32s(try Self.file.tensor(named: "f32")).map { Float(bitPattern: $0) }
        let expected = u16s(try Self.file.tensor(named: "f32_to_f16"))
        let got = Precision.f32ToF16(input)
        let bad = (0..<input.count).filter { got[$0] != expected[$0] }
        #expect(bad.count == 0, "\(bad.count) of \(input.count) differ; first: \(bad.prefix(3).map { String(input[$0].bitPattern, radix: 16) })")
    }

    @Test func nanStaysNaNAndInfStaysInf() {
        let nans: [UInt32] = [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFF80_0001, 0x7FFF_FFFF, 0x7F80_8000, 0x7FA0_0000]
        let input = nans.map { Float(bitPattern: $0) } + [.infinity, -.infinity]
        let bf = Precision.bf16ToF32(Precision.f32ToBF16(input))
        let hf = Precision.f16ToF32(Precision.f32ToF16(input))
        for i in 0..<nans.count {
            #expect(bf[i].isNaN, "bf16 lost NaN \(String(nans[i], radix: 16))")
            #expect(hf[i].isNaN, "f16 lost NaN \(String(nans[i], radix: 16))")
            #expect(bf[i].sign == input[i].sign && hf[i].sign == input[i].sign, "NaN sign kept")
        }
        #expect(bf.suffix(2) == [.infinity, -.infinity])
        #expect(hf.suffix(2) == [.infinity, -.infinity])
    }

    @Test func vectorTailsAndUnalignedStartsAgreeWithWholeArrays() {
        // The dispatched kernels run 16 or 8 lanes at a time; every length and offset must
        // give the same answer as the whole-array call.
        var rng = TestRNG(seed: 3)
        let values = rng.floats(101).map { $0 * 70_000 }
        let whole = Precision.f32ToBF16(values)
        let wholeHalf = Precision.f32ToF16(values)
        for start in 0..<5 {
            for n in [0, 1, 7, 15, 16, 17, 33, 96] where start + n <= values.count {
                let part = Array(values[start..<(start + n)])
                #expect(Precision.f32ToBF16(part) == Array(whole[start..<(start + n)]))
                #expect(Precision.f32ToF16(part) == Array(wholeHalf[start..<(start + n)]))
            }
        }
    }
}
