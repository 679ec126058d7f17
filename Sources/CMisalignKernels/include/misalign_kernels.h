#ifndef MISALIGN_KERNELS_H
#define MISALIGN_KERNELS_H
#include <stddef.h>
#include <stdint.h>

// Element-wise precision conversions. Each is compiled for AVX-512, AVX2 and baseline
// x86-64 and picked at load time (target_clones), so the package builds without
// -march flags yet runs wide on the CPUs that have it.

/// bf16 -> f32, exact (a bf16 is the top half of an f32). out[n], in[n].
void misalign_bf16_to_f32(float *out, const uint16_t *in, size_t n);
/// f32 -> bf16, round to nearest even; NaN stays NaN (quiet, sign and top payload kept),
/// Inf stays Inf, finite values above the bf16 range round to Inf as IEEE says.
void misalign_f32_to_bf16(uint16_t *out, const float *in, size_t n);
/// f16 (IEEE binary16) -> f32, exact, subnormals included.
void misalign_f16_to_f32(float *out, const uint16_t *in, size_t n);
/// f32 -> f16, round to nearest even, subnormals produced, overflow to Inf, NaN kept NaN.
void misalign_f32_to_f16(uint16_t *out, const float *in, size_t n);

/// Name of the widest instruction set this CPU offers among those the kernels target.
const char *misalign_kernels_isa(void);
#endif
