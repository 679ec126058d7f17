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

// Decode-time product with bf16 weights. For each output o the weight row is read once and
// dotted with up to 4 input rows at a time; 16-wide float accumulators let the compiler keep the
// reduction in vector registers (a strict scalar reduction would not vectorise).
MISALIGN_CLONES
void misalign_matmul_bf16_t(float *y, size_t ldy, const float *x, size_t ldx, const uint16_t *w,
                            size_t m, size_t out, size_t in, int accumulate) {
    enum { L = 16 };
    for (size_t m0 = 0; m0 < m; m0 += 4) {
        size_t mb = m - m0 < 4 ? m - m0 : 4;
        const float *x0 = x + (m0 + 0) * ldx;
        const float *x1 = x + (m0 + (mb > 1 ? 1 : 0)) * ldx;
        const float *x2 = x + (m0 + (mb > 2 ? 2 : 0)) * ldx;
        const float *x3 = x + (m0 + (mb > 3 ? 3 : 0)) * ldx;
        for (size_t o = 0; o < out; o++) {
            const uint16_t *wr = w + o * in;
            float a0[L] = {0}, a1[L] = {0}, a2[L] = {0}, a3[L] = {0};
            size_t k = 0;
            for (; k + L <= in; k += L) {
                for (int l = 0; l < L; l++) {
                    uint32_t bits = (uint32_t)wr[k + l] << 16;
                    float wv;
                    memcpy(&wv, &bits, 4);
                    a0[l] += wv * x0[k + l];
                    a1[l] += wv * x1[k + l];
                    a2[l] += wv * x2[k + l];
                    a3[l] += wv * x3[k + l];
                }
            }
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int l = 0; l < L; l++) { s0 += a0[l]; s1 += a1[l]; s2 += a2[l]; s3 += a3[l]; }
            for (; k < in; k++) {
                uint32_t bits = (uint32_t)wr[k] << 16;
                float wv;
                memcpy(&wv, &bits, 4);
                s0 += wv * x0[k]; s1 += wv * x1[k]; s2 += wv * x2[k]; s3 += wv * x3[k];
            }
            float s[4] = {s0, s1, s2, s3};
            for (size_t j = 0; j < mb; j++) {
                float *dst = y + (m0 + j) * ldy + o;
                *dst = accumulate ? *dst + s[j] : s[j];
            }
        }
    }
}
