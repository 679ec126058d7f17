import Foundation
import MisalignCore

/// Conversion throughput on 64 Mi elements (out of cache), in GB/s of bytes read + written,
/// beside a plain f32 copy of the same bytes as the memory-bandwidth yardstick.
func runConvertBenchmark(_ args: [String]) throws {
    let n = 64 << 20
    let f = FloatBuffer(shape: [n], zeroed: false)
    let g = FloatBuffer(shape: [n], zeroed: false)
    var rng = SplitMix64(seed: 3)
    rng.fill(f)
    let h = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
    defer { h.deallocate() }
    Precision.f32ToBF16(f.pointer, h, count: n)
    let copy = bestTime(repeats: 3) { g.pointer.update(from: f.pointer, count: n) }
    let copyRate = Double(8 * n) / copy / 1e9
    var table = Table("conversion", "ms", "GB/s", "of copy")
    func row(_ name: String, bytes: Int, _ body: () -> Void) {
        let t = bestTime(repeats: 3, body)
        let rate = Double(bytes * n) / t / 1e9
        table.add(name, fmt(t * 1e3, 1), fmt(rate, 1), fmt(100 * rate / copyRate) + "%")
    }
    table.add("f32 memcpy (yardstick)", fmt(copy * 1e3, 1), fmt(copyRate, 1), "100%")
    row("bf16 -> f32", bytes: 6) { Precision.bf16ToF32(h, g.pointer, count: n) }
    row("f32 -> bf16", bytes: 6) { Precision.f32ToBF16(f.pointer, h, count: n) }
    row("f16 -> f32", bytes: 6) { Precision.f16ToF32(h, g.pointer, count: n) }
    row("f32 -> f16", bytes: 6) { Precision.f32ToF16(f.pointer, h, count: n) }
    table.print()
}
