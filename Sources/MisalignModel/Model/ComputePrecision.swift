import CMisalignKernels

/// The arithmetic of the model's matrix products.
///
/// `.f32` (the default) keeps activations in f32 and widens bf16/f16 weights exactly: the
/// results match PyTorch float32 within 1e-5. `.bf16` is opt-in, for bf16 weights on CPUs with
/// the bf16 dot-product instruction (AVX512_BF16): each product's input is rounded to bf16
/// (nearest even) and pairs of products are summed in f32 by `vdpbf16ps`, at about twice the
/// f32 rate. Everything else (norms, attention, residual stream, logits) stays f32, so the
/// result is closer to float32 than PyTorch's own bfloat16 run, which also rounds those.
/// On other CPUs `.bf16` rounds the inputs the same way and multiplies with the f32 kernels
/// (same values up to summation order, f32 speed). f32 and f16 weights ignore it.
public enum ComputePrecision: String, Sendable, Codable, CaseIterable {
    case f32
    case bf16

    /// Whether this CPU runs `.bf16` on its bf16 dot-product instruction.
    public static var bf16DotAvailable: Bool { misalign_bf16_dot_available() == 1 }
}
