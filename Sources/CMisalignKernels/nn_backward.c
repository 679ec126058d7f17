// Backward kernels of the training pass, beside the forward kernels of nn.c they invert.
// Every kernel accumulates into input gradients unless its comment says it overwrites.
#include "misalign_kernels.h"
#include <math.h>

#include "clones.h"

MISALIGN_CLONES
void misalign_rmsnorm_backward(float *dx, const float *dy, const float *x, const float *w, float eps,
                               size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        double ss = 0;
        for (size_t c = 0; c < cols; c++) ss += (double)xr[c] * (double)xr[c];
        // The same rounding as misalign_rmsnorm, so the gradient is of the function computed.
        float inv = (float)(1.0 / sqrt((double)(float)(ss / (double)cols) + (double)eps));
        double dot = 0;
        for (size_t c = 0; c < cols; c++) dot += (double)(w[c] * dyr[c]) * (double)xr[c];
        float k = (float)(dot * (double)inv * (double)inv * (double)inv / (double)cols);
        for (size_t c = 0; c < cols; c++) dxr[c] += inv * (w[c] * dyr[c]) - k * xr[c];
    }
}

MISALIGN_CLONES
void misalign_silu_mul_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        float s = 1.0f / (1.0f + expf(-g));
        float d = dout[i];
        dup[i] = d * g * s;
        dgate[i] = d * up[i] * s * (1.0f + g * (1.0f - s));
    }
}

MISALIGN_CLONES
void misalign_rope_backward(float *dx, size_t heads, size_t head_stride, size_t head_dim, const float *cos, const float *sin) {
    size_t half = head_dim / 2;
    for (size_t h = 0; h < heads; h++) {
        float *a = dx + h * head_stride;
        float *b = a + half;
        for (size_t i = 0; i < half; i++) {
            float g1 = a[i], g2 = b[i];
            a[i] = g1 * cos[i] + g2 * sin[i];
            b[i] = g2 * cos[i] - g1 * sin[i];
        }
    }
}

MISALIGN_CLONES
void misalign_softmax_backward_rows(float *dp, const float *p, size_t rows, size_t stride, size_t n) {
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p + r * stride;
        float *dr = dp + r * stride;
        double dot = 0;
        for (size_t i = 0; i < n; i++) dot += (double)pr[i] * (double)dr[i];
        float fd = (float)dot;
        for (size_t i = 0; i < n; i++) dr[i] = pr[i] * (dr[i] - fd);
    }
}

MISALIGN_CLONES
void misalign_cross_entropy_backward(float *z, const int32_t *targets, double *loss, float scale,
                                     size_t rows, size_t vocab) {
    for (size_t r = 0; r < rows; r++) {
        float *zr = z + r * vocab;
        float mx = -INFINITY;
        for (size_t i = 0; i < vocab; i++) mx = zr[i] > mx ? zr[i] : mx;
        int32_t t = targets[r];
        float zt = zr[t];
        // One exp per logit: keep e^(z - max) in place, then scale it into the gradient.
        double sum = 0;
        for (size_t i = 0; i < vocab; i++) {
            float e = expf(zr[i] - mx);
            zr[i] = e;
            sum += e;
        }
        loss[r] = log(sum) + (double)mx - (double)zt;
        float k = (float)(1.0 / sum) * scale;
        for (size_t i = 0; i < vocab; i++) zr[i] *= k;
        zr[t] -= scale;
    }
}

static inline uint64_t misalign_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Dropout is its own backward: applying the same mask and scale to the gradient is exactly
// d(out)/d(x), so the backward calls this on the gradient with the forward's seed.
MISALIGN_CLONES
void misalign_dropout(float *out, const float *x, size_t rows, size_t cols, size_t ldx, float p, uint64_t seed) {
    float keep = 1.0f / (1.0f - p);
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            uint64_t i = (uint64_t)(r * cols + c) + 1;
            float u = (float)(misalign_mix64(seed + i * 0x9E3779B97F4A7C15ULL) >> 40) * 0x1p-24f;
            out[r * cols + c] = u >= p ? x[r * ldx + c] * keep : 0.0f;
        }
    }
}

// The two elementwise passes of the training backward that see the most data (the loss head's
// logits, 128 x 151,936 per chunk; SwiGLU's 3 x rows x intermediate per layer), on the pool's
// threads: rows (or runs of 16 elements) are independent, so the results are those of one thread.
struct ce_job {
    float *z;
    const int32_t *targets;
    double *loss;
    float scale;
    size_t rows, vocab;
};

static void ce_task(void *ctx, size_t t, size_t n) {
    const struct ce_job *j = ctx;
    size_t r0, r1;
    misalign_share(j->rows, 1, t, n, &r0, &r1);
    if (r0 < r1) misalign_cross_entropy_backward(j->z + r0 * j->vocab, j->targets + r0, j->loss + r0, j->scale, r1 - r0, j->vocab);
}

void misalign_cross_entropy_backward_threads(float *z, const int32_t *targets, double *loss, float scale, size_t rows,
                                             size_t vocab, size_t threads) {
    struct ce_job j = {z, targets, loss, scale, rows, vocab};
    if (threads > 1 && rows > 1) misalign_parallel(threads, ce_task, &j);
    else misalign_cross_entropy_backward(z, targets, loss, scale, rows, vocab);
}

struct silu_back_job {
    float *dgate, *dup;
    const float *dout, *gate, *up;
    size_t n;
};

static void silu_back_task(void *ctx, size_t t, size_t n) {
    const struct silu_back_job *j = ctx;
    size_t b0, b1;
    misalign_share(j->n, 16, t, n, &b0, &b1);
    if (b0 < b1) misalign_silu_mul_backward(j->dgate + b0, j->dup + b0, j->dout + b0, j->gate + b0, j->up + b0, b1 - b0);
}

void misalign_silu_mul_backward_threads(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n,
                                        size_t threads) {
    struct silu_back_job j = {dgate, dup, dout, gate, up, n};
    if (threads > 1 && n >= (1u << 16)) misalign_parallel(threads, silu_back_task, &j);
    else misalign_silu_mul_backward(dgate, dup, dout, gate, up, n);
}
