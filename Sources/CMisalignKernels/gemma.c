// Kernels for Gemma 2's differences from Qwen2 and Llama: the GeGLU activation (gelu with the
// tanh approximation, as PyTorch's `gelu(approximate="tanh")`), soft-capping of attention
// scores and logits (cap * tanh(x / cap)), and a causal softmax limited to a sliding window.
#include "misalign_kernels.h"
#include <math.h>

#include <string.h>

#include "clones.h"
#include "vec.h"

// PyTorch's constants: kBeta = sqrt(2) * (2 / sqrt(pi)) / 2 = sqrt(2 / pi), kKappa = 0.044715.
#define GELU_BETA ((float)(M_SQRT2 * M_2_SQRTPI * 0.5))
#define GELU_KAPPA 0.044715f

// Through a local block, as silu_mul_range in nn.c: the model calls this with out == gate, and
// a loop written straight to out would keep a runtime overlap check and run scalar.
MISALIGN_CLONES
static void gelu_mul_range(float *out, const float *gate, const float *up, size_t n) {
    float block[256] __attribute__((aligned(64)));
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t len = n - i0 < 256 ? n - i0 : 256;
        const float *g = gate + i0, *u = up + i0;
        for (size_t i = 0; i < len; i++) {
            float x = g[i];
            float inner = GELU_BETA * (x + GELU_KAPPA * (x * x * x));
            block[i] = (0.5f * x * (1.0f + misalign_tanh(inner))) * u[i];
        }
        memcpy(out + i0, block, len * sizeof(float));
    }
}

MISALIGN_CLONES
static void gelu_mul_backward_range(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = gate[i], d = dout[i];
        float x2 = x * x;
        float t = misalign_tanh(GELU_BETA * (x + GELU_KAPPA * x2 * x));
        float left = 0.5f * x, right = 1.0f + t;
        float dgelu = 0.5f * right + left * (1.0f - t * t) * GELU_BETA * (1.0f + 3.0f * GELU_KAPPA * x2);
        float u = up[i];
        dup[i] = d * (left * right);
        dgate[i] = d * u * dgelu;
    }
}

struct gelu_job { float *out, *dup; const float *dout, *gate, *up; size_t n; };

static void gelu_task(void *ctx, size_t t, size_t n) {
    const struct gelu_job *j = ctx;
    size_t b0, b1;
    misalign_share(j->n, 16, t, n, &b0, &b1);
    if (b0 < b1) gelu_mul_range(j->out + b0, j->gate + b0, j->up + b0, b1 - b0);
}

static void gelu_back_task(void *ctx, size_t t, size_t n) {
    const struct gelu_job *j = ctx;
    size_t b0, b1;
    misalign_share(j->n, 16, t, n, &b0, &b1);
    if (b0 < b1) gelu_mul_backward_range(j->out + b0, j->dup + b0, j->dout + b0, j->gate + b0, j->up + b0, b1 - b0);
}

void misalign_gelu_tanh_mul_threads(float *out, const float *gate, const float *up, size_t n, size_t threads) {
    struct gelu_job j = {out, NULL, NULL, gate, up, n};
    if (threads > 1 && n >= (1u << 16)) misalign_parallel(threads, gelu_task, &j);
    else gelu_mul_range(out, gate, up, n);
}

void misalign_gelu_tanh_mul_backward_threads(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                                             size_t n, size_t threads) {
    struct gelu_job j = {dgate, dup, dout, gate, up, n};
    if (threads > 1 && n >= (1u << 16)) misalign_parallel(threads, gelu_back_task, &j);
    else gelu_mul_backward_range(dgate, dup, dout, gate, up, n);
}

MISALIGN_CLONES
void misalign_softcap(float *x, size_t n, float cap) {
    for (size_t i = 0; i < n; i++) x[i] = misalign_tanh(x[i] / cap) * cap;
}

MISALIGN_CLONES
void misalign_softcap_backward(float *d, const float *raw, size_t n, float cap) {
    for (size_t i = 0; i < n; i++) {
        float t = misalign_tanh(raw[i] / cap);
        d[i] *= 1.0f - t * t;
    }
}

MISALIGN_CLONES
void misalign_softmax_window_rows(float *x, size_t rows, size_t stride, size_t window) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * stride;
        size_t hi = r + 1, lo = window > 0 && hi > window ? hi - window : 0;
        float mx = -INFINITY;
        for (size_t i = lo; i < hi; i++) mx = row[i] > mx ? row[i] : mx;
        double sum = 0;
        for (size_t i = lo; i < hi; i++) {
            float e = expf(row[i] - mx);
            row[i] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (size_t i = 0; i < lo; i++) row[i] = 0;
        for (size_t i = lo; i < hi; i++) row[i] *= inv;
        for (size_t i = hi; i < stride; i++) row[i] = 0;
    }
}
