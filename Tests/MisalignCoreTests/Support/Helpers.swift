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

/// Loads a JSON fixture.
func loadJSON(_ relative: String) throws -> JSONValue {
    try JSONValue.parse(Data(contentsOf: Fixtures.url(relative)))
}

/// Bit patterns of a U32 tensor (f32 values stored bit-exactly in fixtures).
func u32s(_ t: SafeTensor) -> [UInt32] {
    (0..<t.elementCount).map { t.bytes.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian }
}

/// Bit patterns of a U16 tensor.
func u16s(_ t: SafeTensor) -> [UInt16] {
    (0..<t.elementCount).map { t.bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self).littleEndian }
}

/// Writes `bytes` to a fresh temporary file and returns its path.
func temporaryFile(_ bytes: [UInt8], name: String = "t.safetensors") -> String {
    let dir = Fixtures.temporaryDirectory()
    let path = dir.appendingPathComponent(name).path
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

/// A safetensors file image from a header text and a data section.
func safetensorsImage(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out = withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { Array($0) }
    out += h
    out += data
    return out
}

/// Deterministic pseudo-random floats in [-1, 1), for kernel tests.
typealias TestRNG = SplitMix64
extension SplitMix64 {
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
    mutating func floats(_ n: Int) -> [Float] { (0..<n).map { _ in float() } }
}

/// Worst error of y ([m, ldy]) against the float64 product x W^T (+ y0), x [m, ldx], W [out, inDim],
/// relative to each entry's sum of |products| (+ |y0|): the scale f32 summation error grows with.
func productError(y: [Float], y0: [Float]?, x: [Float], ldx: Int, w: [Float], m: Int, inDim: Int, out: Int, ldy: Int) -> Double {
    var worst = 0.0
    for r in 0..<m { for o in 0..<out {
        var s = 0.0, mag = 0.0
        for k in 0..<inDim {
            let p = Double(x[r * ldx + k]) * Double(w[o * inDim + k])
            s += p; mag += abs(p)
        }
        if let y0 { s += Double(y0[r * ldy + o]); mag += abs(Double(y0[r * ldy + o])) }
        worst = max(worst, abs(Double(y[r * ldy + o]) - s) / max(mag, 1e-30))
    } }
    return worst
}

/// Writes `tensors` (name, values, shape), stored as `dtype`, to w.safetensors in a fresh
/// temporary folder and opens it. The caller removes `dir` when done.
func temporaryWeights(_ tensors: [(name: String, values: [Float], shape: [Int])], dtype: DType) throws -> (file: SafeTensorsFile, dir: URL) {
    var writer = SafeTensorsWriter()
    for t in tensors { writer.add(t.name, floats: t.values, shape: t.shape, dtype: dtype) }
    let dir = Fixtures.temporaryDirectory()
    let url = dir.appendingPathComponent("w.safetensors")
    try writer.write(to: url)
    return (try SafeTensorsFile(url: url), dir)
}
