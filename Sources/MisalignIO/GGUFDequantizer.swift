import Foundation
import MisalignKernels

/// Converts GGUF tensor data (F32, F16, BF16, Q8_0, Q4_K, Q6_K) to f32, with ggml's block
/// layouts (ggml-common.h; gguf-py `gguf/quants.py`) and the same arithmetic order as gguf-py's
/// dequantisation, so the values are bit-identical to it:
/// - Q8_0, 34-byte blocks of 32: fp16 `d`, 32 int8 `q`; `q * d`.
/// - Q4_K, 144-byte blocks of 256: fp16 `d`, fp16 `dmin`, 12 bytes of eight 6-bit scales and
///   eight 6-bit mins, 128 bytes of 4-bit `q` (sub-block pairs share bytes: low then high
///   nibbles); `(d * scale) * q - (dmin * min)`.
/// - Q6_K, 210-byte blocks of 256: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs,
///   16 int8 scales, fp16 `d`; `(d * scale) * (q - 32)`.
public enum GGUFDequantizer {
    /// Dequantises `count` values of `type` (a whole number of blocks) from `src` into `out`.
    /// Large inputs are split over the cores. Unsupported types are a precondition failure;
    /// check `GGMLType.isSupported` first.
    public static func dequantize(_ src: UnsafeRawPointer, type: GGMLType, count: Int, into out: UnsafeMutablePointer<Float>) {
        guard let (values, bytes) = type.blockLayout else { preconditionFailure("\(type.name) is not dequantised") }
        precondition(count % values == 0, "\(count) values are not whole \(type.name) blocks")
        let blocks = count / values
        // Chunks of ~1 MB of output, run on the cores when there are several.
        let perChunk = max(1, (1 << 18) / values)
        let chunks = (blocks + perChunk - 1) / perChunk
        let job = { (c: Int) in
            let first = c * perChunk, n = min(perChunk, blocks - first)
            run(src + first * bytes, type: type, blocks: n, out: out + first * values)
        }
        if chunks <= 1 { job(0) } else {
            let s = UnsafeSendable(job)
            DispatchQueue.concurrentPerform(iterations: chunks) { s.value($0) }
        }
    }

    /// A tensor of `file` dequantised to f32, in a new buffer with the tensor's shape.
    public static func floats(_ file: GGUFFile, _ info: GGUFTensorInfo) throws(GGUFError) -> FloatBuffer {
        let raw = try file.bytes(of: info)
        let out = FloatBuffer(shape: info.shape, zeroed: false)
        if info.elementCount > 0, let base = raw.baseAddress {
            dequantize(base, type: info.type, count: info.elementCount, into: out.pointer)
        }
        return out
    }

    private static func run(_ src: UnsafeRawPointer, type: GGMLType, blocks: Int, out: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32: UnsafeMutableRawPointer(out).copyMemory(from: src, byteCount: blocks * 4)
        case .f16: Precision.f16ToF32(src.assumingMemoryBound(to: UInt16.self), out, count: blocks)
        case .bf16: Precision.bf16ToF32(src.assumingMemoryBound(to: UInt16.self), out, count: blocks)
        case .q8_0: q8_0(src, blocks: blocks, out: out)
        case .q4_K: q4_K(src, blocks: blocks, out: out)
        case .q6_K: q6_K(src, blocks: blocks, out: out)
        default: preconditionFailure("\(type.name) is not dequantised")
        }
    }

    /// IEEE half to float, exact (normals, subnormals, infinities, NaN).
    @inline(__always) static func half(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exp = Int(bits >> 10) & 0x1f, mant = UInt32(bits & 0x3ff)
        if exp == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
        if exp == 0 {
            let m = Float(mant) * (1.0 / 16_777_216.0)  // mant * 2^-24, exact
            return sign != 0 ? -m : m
        }
        return Float(bitPattern: sign | UInt32(exp + 112) << 23 | (mant << 13))
    }

    @inline(__always) static func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        half(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    static func q8_0(_ src: UnsafeRawPointer, blocks: Int, out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 34, y = out + b * 32
            let d = loadHalf(p, 0)
            let q = (p + 2).assumingMemoryBound(to: Int8.self)
            for l in 0..<32 { y[l] = Float(q[l]) * d }
        }
    }

    static func q4_K(_ src: UnsafeRawPointer, blocks: Int, out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 144, y = out + b * 256
            let d = loadHalf(p, 0), dmin = loadHalf(p, 2)
            let s = (p + 4).assumingMemoryBound(to: UInt8.self)
            let qs = (p + 16).assumingMemoryBound(to: UInt8.self)
            for j in 0..<4 {
                let (sc0, m0) = scaleMin(s, 2 * j), (sc1, m1) = scaleMin(s, 2 * j + 1)
                let d0 = d * Float(sc0), dm0 = dmin * Float(m0)
                let d1 = d * Float(sc1), dm1 = dmin * Float(m1)
                let q = qs + 32 * j, y0 = y + 64 * j
                for l in 0..<32 {
                    y0[l] = d0 * Float(q[l] & 0x0f) - dm0
                    y0[32 + l] = d1 * Float(q[l] >> 4) - dm1
                }
            }
        }
    }

    /// Q4_K's 6-bit scale and min of sub-block `k` (0-7) from its 12 packed bytes.
    @inline(__always) static func scaleMin(_ s: UnsafePointer<UInt8>, _ k: Int) -> (UInt8, UInt8) {
        if k < 4 { return (s[k] & 63, s[k + 4] & 63) }
        return ((s[k + 4] & 0x0f) | ((s[k - 4] >> 6) << 4), (s[k + 4] >> 4) | ((s[k] >> 6) << 4))
    }

    static func q6_K(_ src: UnsafeRawPointer, blocks: Int, out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 210
            let d = loadHalf(p, 208)
            let scales = (p + 192).assumingMemoryBound(to: Int8.self)
            for h in 0..<2 {
                let ql = (p + 64 * h).assumingMemoryBound(to: UInt8.self)
                let qh = (p + 128 + 32 * h).assumingMemoryBound(to: UInt8.self)
                let y = out + b * 256 + 128 * h
                // Sixteen values at a time share their four scales: a branch-free inner loop.
                for g in 0..<2 {
                    let sc = scales + 8 * h + g
                    let s0 = d * Float(sc[0]), s1 = d * Float(sc[2]), s2 = d * Float(sc[4]), s3 = d * Float(sc[6])
                    for l in (16 * g)..<(16 * g + 16) {
                        let h0 = Int32(qh[l]), lo = Int32(ql[l]), hi = Int32(ql[l &+ 32])
                        y[l] = s0 * Float(((lo & 0x0f) | ((h0 & 3) << 4)) &- 32)
                        y[l &+ 32] = s1 * Float(((hi & 0x0f) | (((h0 >> 2) & 3) << 4)) &- 32)
                        y[l &+ 64] = s2 * Float(((lo >> 4) | (((h0 >> 4) & 3) << 4)) &- 32)
                        y[l &+ 96] = s3 * Float(((hi >> 4) | (((h0 >> 6) & 3) << 4)) &- 32)
                    }
                }
            }
        }
    }
}

/// Carries a non-Sendable closure into `concurrentPerform`.
// Unchecked Sendable: the closure only reads immutable input and writes a slice of the output
// that no other iteration touches, and `concurrentPerform` returns after every iteration ends.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
