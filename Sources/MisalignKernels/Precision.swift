import CMisalignKernels

/// Conversions between f32 and the 16-bit float formats model files use.
///
/// They follow PyTorch's CPU semantics bit for bit: round to nearest, ties to even, in both
/// directions of subnormals, with overflow to ±Inf. NaN stays NaN (quiet); its payload is not
/// promised, as PyTorch's own scalar and vector paths disagree on it. The work is done by
/// C kernels compiled for AVX-512, AVX2 and baseline x86-64, chosen when the library loads.
public enum Precision {
    /// `out[i] = Float(bf16: input[i])`, exact.
    @inlinable public static func bf16ToF32(_ input: UnsafePointer<UInt16>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        misalign_bf16_to_f32(out, input, count)
    }
    /// `out[i] = bf16(input[i])`, round to nearest even.
    @inlinable public static func f32ToBF16(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<UInt16>, count: Int) {
        misalign_f32_to_bf16(out, input, count)
    }
    /// `out[i] = Float(f16: input[i])`, exact (IEEE binary16).
    @inlinable public static func f16ToF32(_ input: UnsafePointer<UInt16>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        misalign_f16_to_f32(out, input, count)
    }
    /// `out[i] = f16(input[i])`, round to nearest even.
    @inlinable public static func f32ToF16(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<UInt16>, count: Int) {
        misalign_f32_to_f16(out, input, count)
    }

    /// Array forms, for tests and small data.
    public static func bf16ToF32(_ bits: [UInt16]) -> [Float] {
        [Float](unsafeUninitializedCapacity: bits.count) { out, n in
            bits.withUnsafeBufferPointer { misalign_bf16_to_f32(out.baseAddress, $0.baseAddress, bits.count) }
            n = bits.count
        }
    }
    public static func f32ToBF16(_ values: [Float]) -> [UInt16] {
        [UInt16](unsafeUninitializedCapacity: values.count) { out, n in
            values.withUnsafeBufferPointer { misalign_f32_to_bf16(out.baseAddress, $0.baseAddress, values.count) }
            n = values.count
        }
    }
    public static func f16ToF32(_ bits: [UInt16]) -> [Float] {
        [Float](unsafeUninitializedCapacity: bits.count) { out, n in
            bits.withUnsafeBufferPointer { misalign_f16_to_f32(out.baseAddress, $0.baseAddress, bits.count) }
            n = bits.count
        }
    }
    public static func f32ToF16(_ values: [Float]) -> [UInt16] {
        [UInt16](unsafeUninitializedCapacity: values.count) { out, n in
            values.withUnsafeBufferPointer { misalign_f32_to_f16(out.baseAddress, $0.baseAddress, values.count) }
            n = values.count
        }
    }
}

/// What the native kernels run on.
public enum KernelInfo {
    /// The widest instruction set the C kernels dispatch to on this CPU.
    public static var isa: String { String(cString: misalign_kernels_isa()) }
}

/// The library's version, shown by `misalign --version` and recorded in reports.
public enum MisalignVersion {
    public static let string = "0.1.0"
}

/// Row reductions the scoring code needs.
public enum RowMath {
    /// log(sum_i exp(row[i])) in f64 over `count` logits (`misalign_log_sum_exp`): -inf for an
    /// empty or all -inf row, +inf if a logit is +inf, NaN if one is NaN.
    @inlinable public static func logSumExp(_ row: UnsafePointer<Float>, count: Int) -> Double {
        misalign_log_sum_exp(row, count)
    }
}
