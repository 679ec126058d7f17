import Foundation
@testable import MisalignCore

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
