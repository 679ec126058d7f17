#include "misalign_kernels.h"
#include <string.h>

#include "clones.h"

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

MISALIGN_CLONES
void misalign_bf16_to_f32(float *out, const uint16_t *in, size_t n) {
    uint32_t *o = (uint32_t *)out;
    for (size_t i = 0; i < n; i++) o[i] = (uint32_t)in[i] << 16;
}

MISALIGN_CLONES
void misalign_f32_to_bf16(uint16_t *out, const float *in, size_t n) {
    const uint32_t *u = (const uint32_t *)in;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = u[i];
        // Round to nearest even: add 0x7FFF plus the lowest kept bit, then truncate.
        uint32_t rounded = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
        // NaN: truncating could clear every payload bit and make an Inf, so keep the
        // top payload and force the quiet bit instead (what vcvtneps2bf16 does).
        uint32_t nan = (x >> 16) | 0x40u;
        out[i] = (uint16_t)(((x & 0x7FFFFFFFu) > 0x7F800000u) ? nan : rounded);
    }
}

MISALIGN_CLONES
void misalign_f16_to_f32(float *out, const uint16_t *in, size_t n) {
    uint32_t *o32 = (uint32_t *)out;
    const float magic = bits_f32(113u << 23); // 2^-14, the smallest normal f16
    for (size_t i = 0; i < n; i++) {
        uint32_t h = in[i];
        uint32_t o = (h & 0x7FFFu) << 13;        // exponent and mantissa into place
        uint32_t exp = o & 0x0F800000u;
        o += (127u - 15u) << 23;                 // rebias exponent
        uint32_t infnan = o + ((128u - 16u) << 23);
        // Subnormal or zero: let the FPU normalise it (exact: the result is representable).
        uint32_t sub = f32_bits(bits_f32(o + (1u << 23)) - magic);
        o = (exp == 0x0F800000u) ? infnan : ((exp == 0) ? sub : o);
        o32[i] = o | ((h & 0x8000u) << 16);
    }
}

MISALIGN_CLONES
void misalign_f32_to_f16(uint16_t *out, const float *in, size_t n) {
    const uint32_t *u = (const uint32_t *)in;
    const uint32_t f32inf = 255u << 23;
    const uint32_t f16max = (127u + 16u) << 23;              // 2^16: rounds to Inf and above
    const uint32_t denormMagic = ((127u - 15u) + (23u - 10u) + 1u) << 23; // 0.5
    for (size_t i = 0; i < n; i++) {
        uint32_t x = u[i];
        uint32_t sign = x & 0x80000000u;
        uint32_t f = x ^ sign;
        // Large, Inf or NaN.
        uint32_t big = (f > f32inf) ? (0x7E00u | ((f >> 13) & 0x3FFu)) : 0x7C00u;
        // Subnormal result: adding 0.5 lets the FPU do round-to-nearest-even at the
        // right bit; the low bits of the sum are the f16 subnormal.
        uint32_t sub = f32_bits(bits_f32(f) + bits_f32(denormMagic)) - denormMagic;
        // Normal result: rebias and round to nearest even by hand.
        uint32_t mantOdd = (f >> 13) & 1u;
        uint32_t norm = (f + (((uint32_t)(15 - 127)) << 23) + 0xFFFu + mantOdd) >> 13;
        uint32_t o = (f >= f16max) ? big : ((f < (113u << 23)) ? sub : norm);
        out[i] = (uint16_t)(o | (sign >> 16));
    }
}

const char *misalign_kernels_isa(void) {
#if defined(__x86_64__) && defined(__clang__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2/FMA)";
    return "x86-64 baseline";
#else
    return "portable";
#endif
}

MISALIGN_CLONES
void misalign_round_to_bf16(float *out, const float *in, size_t n) {
    const uint32_t *u = (const uint32_t *)in;
    uint32_t *o = (uint32_t *)out;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = u[i];
        uint32_t rounded = ((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16) << 16;
        uint32_t nan = (x | 0x400000u) & 0xFFFF0000u;
        o[i] = ((x & 0x7FFFFFFFu) > 0x7F800000u) ? nan : rounded;
    }
}
