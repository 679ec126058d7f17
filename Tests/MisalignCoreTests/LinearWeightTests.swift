import Testing
import Foundation
@testable import MisalignCore

/// Every path of `LinearWeight.apply` (direct decode kernel, sgemm, widened blocks) against a
/// float64 product, for f32, bf16 and f16 storage.
@Suite struct LinearWeightTests {
    @Test(arguments: [DType.f32, .bf16, .f16])
    func allPathsMatchFloat64(dtype: DType) throws {
        var rng = SplitMix64(seed: 77)
        let out = 150, inDim = 67 // odd sizes exercise the vector tails; 150 > one 64-row block
        let wValues = rng.floats(out * inDim)
        var writer = SafeTensorsWriter()
        writer.add("w", floats: wValues, shape: [out, inDim], dtype: dtype)
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("w.safetensors")
        try writer.write(to: url)
        let file = try SafeTensorsFile(url: url)
        let w = try LinearWeight(tensor: try file.tensor(named: "w"))
        let stored = try file.tensor(named: "w").floats() // the values after rounding to dtype
        let scratch = FloatBuffer(shape: [w.scratchCount])
        for m in [1, 3, 8, 9, 20, 32, 33, 70] {
            let ldx = inDim + 5, ldy = out + 3
            let x = rng.floats(m * ldx)
            for (accumulate, blockRows) in [(false, nil), (true, nil), (false, 64 as Int?)] {
                var y = rng.floats(m * ldy)
                let y0 = y
                y.withUnsafeMutableBufferPointer { yp in
                    w.apply(x: x, ldx: ldx, rows: m, y: yp.baseAddress!, ldy: ldy, accumulate: accumulate, scratch: scratch.pointer,
                            blockRows: blockRows) // 64: three widened blocks, the last partial
                }
                var worst = 0.0
                for i in 0..<m { for o in 0..<out {
                    var s = 0.0
                    for k in 0..<inDim { s += Double(x[i * ldx + k]) * Double(stored[o * inDim + k]) }
                    if accumulate { s += Double(y0[i * ldy + o]) }
                    worst = max(worst, abs(Double(y[i * ldy + o]) - s))
                } }
                #expect(worst < 1e-5, "\(dtype) m=\(m) accumulate=\(accumulate) blocks=\(String(describing: blockRows)): max error \(worst)")
                // Columns past `out` in each row are untouched.
                for i in 0..<m { for o in out..<ldy { #expect(y[i * ldy + o] == y0[i * ldy + o]) } }
            }
        }
    }
}
