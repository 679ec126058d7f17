import Foundation
import MisalignCore

/// GGUF dequantisation throughput (`misalign import-gguf`'s inner loop) for Q4_K, Q6_K and Q8_0
/// on ~64 Mi values (out of cache), in GB/s of f32 written, beside the machine's memory read
/// bandwidth measured in the same run (`measureBandwidth`). Block bytes are random with small
/// finite fp16 scales, as in Tests/Fixtures/gguf/make_gguf.py.
func runGGUFBenchmark(_ args: [String]) throws {
    let values = 64 << 20
    let out = FloatBuffer(shape: [values], zeroed: true)
    let bandwidth = measureBandwidth()
    var table = Table("type", "MB in", "ms", "GB/s f32 out", "GB/s in", "of read bandwidth", "Mvalues/s")
    for (type, scaleOffset) in [(GGMLType.q4_K, 0), (GGMLType.q6_K, 208), (GGMLType.q8_0, 0)] {
        let (per, bytes) = type.blockLayout!
        let blocks = values / per
        let raw = UnsafeMutableRawPointer.allocate(byteCount: blocks * bytes, alignment: 64)
        defer { raw.deallocate() }
        var rng = SplitMix64(seed: 9)
        for i in 0..<(blocks * bytes / 8) { raw.storeBytes(of: rng.next(), toByteOffset: 8 * i, as: UInt64.self) }
        let scale: UInt16 = 0x1c00  // fp16 0.0039
        for b in 0..<blocks {
            raw.storeBytes(of: scale, toByteOffset: b * bytes + scaleOffset, as: UInt16.self)
            if type == .q4_K { raw.storeBytes(of: scale, toByteOffset: b * bytes + 2, as: UInt16.self) }
        }
        let t = bestTime(repeats: 3) { GGUFDequantizer.dequantize(raw, type: type, count: values, into: out.pointer) }
        let outRate = Double(4 * values) / t / 1e9, inRate = Double(blocks * bytes) / t / 1e9
        table.add(type.name, fmt(Double(blocks * bytes) / 1e6, 0), fmt(t * 1e3, 1), fmt(outRate, 2), fmt(inRate, 2),
                  fmt(100 * (outRate + inRate) / bandwidth) + "%", fmt(Double(values) / t / 1e6, 0))
    }
    table.print()
    print("memory read bandwidth \(fmt(bandwidth)) GB/s; ratio = (bytes read + f32 written) / s over it")
}
