#ifndef MISALIGN_VEC_H
#define MISALIGN_VEC_H
// Shared by the kernel files: explicit 16-lane vectors (clang vector extensions, lowered to
// AVX-512, AVX2 or SSE by each target_clones clone) and an exp that vectorises.
#include <stdint.h>
#include <string.h>

typedef float v16f __attribute__((vector_size(64), aligned(4)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

#define LOADV_F32(p) (*(const v16f *)(p))

// Horizontal sum of 16 lanes as a tree of vector adds: the scalar lane-by-lane sum it
// replaces took longer than the dot product itself for 896-long rows. (A macro: a function
// taking a 64-byte vector would change ABI between the clones.)
#define HSUM16(v, out)                                                                         \
    do {                                                                                       \
        v8f h8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +                       \
                 __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);                  \
        v4f h4 = __builtin_shufflevector(h8, h8, 0, 1, 2, 3) + __builtin_shufflevector(h8, h8, 4, 5, 6, 7); \
        (out) = (h4[0] + h4[2]) + (h4[1] + h4[3]);                                             \
    } while (0)

// e^x within 2 ulp (Cephes' expf: x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial in r, then
// 2^n built in the exponent bits). Branch-free and call-free, so a loop over it vectorises where
// libm's expf is a call per element. Below -87.3 it returns 1.2e-38 (the smallest normal)
// instead of a subnormal or 0, above 88.4 it saturates at 2.4e38 instead of Inf (its callers
// take x <= 0, or divide by 1 + e^x); NaN stays NaN.
static inline __attribute__((always_inline)) float misalign_exp(float x) {
    float c = x < -87.33654f ? -87.33654f : (x > 88.37626f ? 88.37626f : x);
    float n = __builtin_floorf(c * 1.44269504088896341f + 0.5f);
    n = n > 127.0f ? 127.0f : n;
    float r = c - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

// tanh(x) within a few ulp, branch-free and call-free like misalign_exp (libm's tanhf is a
// call per element: Gemma 2's GeGLU ran 1.3x slower than SwiGLU on it). |x| < 0.55: the odd
// Taylor series to x^17 (the first term left out is below 6e-9 relative there); beyond:
// 1 - 2 / (e^{2|x|} + 1) with the sign of x (1 where e^{2|x|} saturates). NaN stays NaN.
static inline __attribute__((always_inline)) float misalign_tanh(float x) {
    float a = __builtin_fabsf(x);
    float z = x * x;
    float p = 6404582.0f / 10854718875.0f;
    p = p * z - 929569.0f / 638512875.0f;
    p = p * z + 21844.0f / 6081075.0f;
    p = p * z - 1382.0f / 155925.0f;
    p = p * z + 62.0f / 2835.0f;
    p = p * z - 17.0f / 315.0f;
    p = p * z + 2.0f / 15.0f;
    p = p * z - 1.0f / 3.0f;
    float small = x + x * z * p;
    float big = 1.0f - 2.0f / (misalign_exp(2.0f * a) + 1.0f);
    big = __builtin_copysignf(big, x);
    return a < 0.55f ? small : big;
}
#endif
