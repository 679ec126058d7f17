#include "misalign_kernels.h"
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#define MISALIGN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MISALIGN_CLONES
#endif

MISALIGN_CLONES
void misalign_rmsnorm(float *out, const float *x, const float *w, float eps, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *o = out + r * cols;
        double ss = 0;
        for (size_t c = 0; c < cols; c++) ss += (double)xr[c] * (double)xr[c];
        // HF: variance in f32, then x * rsqrt(variance + eps), then weight * that.
        float inv = (float)(1.0 / sqrt((double)(float)(ss / (double)cols) + (double)eps));
        for (size_t c = 0; c < cols; c++) o[c] = w[c] * (xr[c] * inv);
    }
}

MISALIGN_CLONES
void misalign_silu_mul(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = (g / (1.0f + expf(-g))) * up[i];
    }
}

MISALIGN_CLONES
void misalign_add_inplace(float *out, const float *a, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] += a[i];
}

MISALIGN_CLONES
void misalign_add_bias(float *out, const float *bias, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        float *o = out + r * cols;
        for (size_t c = 0; c < cols; c++) o[c] += bias[c];
    }
}

MISALIGN_CLONES
void misalign_axpy(float *out, const float *a, float scale, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] += scale * a[i];
}

MISALIGN_CLONES
void misalign_rope(float *x, size_t heads, size_t head_stride, size_t head_dim, const float *cos, const float *sin) {
    size_t half = head_dim / 2;
    for (size_t h = 0; h < heads; h++) {
        float *a = x + h * head_stride;
        float *b = a + half;
        for (size_t i = 0; i < half; i++) {
            float x1 = a[i], x2 = b[i];
            a[i] = x1 * cos[i] - x2 * sin[i];
            b[i] = x2 * cos[i] + x1 * sin[i];
        }
    }
}

MISALIGN_CLONES
void misalign_softmax_rows(float *x, size_t rows, size_t stride, const size_t *valid) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * stride;
        size_t n = valid[r];
        float mx = -INFINITY;
        for (size_t i = 0; i < n; i++) mx = row[i] > mx ? row[i] : mx;
        double sum = 0;
        for (size_t i = 0; i < n; i++) {
            float e = expf(row[i] - mx);
            row[i] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (size_t i = 0; i < n; i++) row[i] *= inv;
        for (size_t i = n; i < stride; i++) row[i] = 0;
    }
}

MISALIGN_CLONES
void misalign_widen_rows(float *out, const uint16_t *w, size_t rows, size_t cols, int is_bf16) {
    if (is_bf16) {
        misalign_bf16_to_f32(out, w, rows * cols);
    } else {
        misalign_f16_to_f32(out, w, rows * cols);
    }
}

// Decode-time products. For each output o the weight row is read once per block of up to 8
// input rows; 16-wide float accumulators keep the reduction in vector registers (a strict
// scalar reduction would not vectorise). LOAD(k) yields W[o, k] as a float.
#define MATMUL_T_BODY(LOAD)                                                                    \
    enum { L = 16, MB = 8 };                                                                   \
    for (size_t m0 = 0; m0 < m; m0 += MB) {                                                    \
        size_t mb = m - m0 < MB ? m - m0 : MB;                                                 \
        const float *xs[MB];                                                                   \
        for (size_t j = 0; j < MB; j++) xs[j] = x + (m0 + (j < mb ? j : 0)) * ldx;             \
        for (size_t o = o0; o < o1; o++) {                                                     \
            float acc[MB][L];                                                                  \
            memset(acc, 0, sizeof acc);                                                        \
            size_t k = 0;                                                                      \
            for (; k + L <= in; k += L) {                                                      \
                float wv[L];                                                                   \
                for (int l = 0; l < L; l++) wv[l] = LOAD(k + l);                               \
                for (size_t j = 0; j < MB; j++)                                                \
                    for (int l = 0; l < L; l++) acc[j][l] += wv[l] * xs[j][k + l];             \
            }                                                                                  \
            float s[MB];                                                                       \
            for (size_t j = 0; j < MB; j++) {                                                  \
                float t = 0;                                                                   \
                for (int l = 0; l < L; l++) t += acc[j][l];                                    \
                for (size_t kk = k; kk < in; kk++) t += LOAD(kk) * xs[j][kk];                  \
                s[j] = t;                                                                      \
            }                                                                                  \
            for (size_t j = 0; j < mb; j++) {                                                  \
                float *dst = y + (m0 + j) * ldy + o;                                           \
                *dst = accumulate ? *dst + s[j] : s[j];                                        \
            }                                                                                  \
        }                                                                                      \
    }

static inline float bf16_at(const uint16_t *p) {
    uint32_t bits = (uint32_t)*p << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

MISALIGN_CLONES
void misalign_matmul_bf16_t(float *y, size_t ldy, const float *x, size_t ldx, const uint16_t *w,
                            size_t m, size_t in, size_t o0, size_t o1, int accumulate) {
#define LOAD_BF16(i) bf16_at(w + o * in + (i))
    MATMUL_T_BODY(LOAD_BF16)
#undef LOAD_BF16
}

MISALIGN_CLONES
void misalign_matmul_f32_t(float *y, size_t ldy, const float *x, size_t ldx, const float *w,
                           size_t m, size_t in, size_t o0, size_t o1, int accumulate) {
#define LOAD_F32(i) w[o * in + (i)]
    MATMUL_T_BODY(LOAD_F32)
#undef LOAD_F32
}
