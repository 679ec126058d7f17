#include "misalign_kernels.h"
#include <math.h>
#include <string.h>

#include "clones.h"
#include "vec.h"

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

// The model calls this with out == gate. Written straight to out, the loop kept a runtime
// overlap check, which an in-place call fails, so it ran the scalar fallback: 20 cycles an
// element, 8.6% of a bf16-products prefill. Through a local block, which cannot alias, it is
// vectorised unconditionally (and misalign_exp vectorises where libm's expf did not).
MISALIGN_CLONES
static void silu_mul_range(float *out, const float *gate, const float *up, size_t n) {
    float block[256] __attribute__((aligned(64)));
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t len = n - i0 < 256 ? n - i0 : 256;
        const float *g = gate + i0, *u = up + i0;
        for (size_t i = 0; i < len; i++) block[i] = (g[i] / (1.0f + misalign_exp(-g[i]))) * u[i];
        memcpy(out + i0, block, len * sizeof(float));
    }
}

struct silu_job { float *out; const float *gate, *up; size_t n; };

static void silu_task(void *ctx, size_t t, size_t n) {
    const struct silu_job *j = ctx;
    size_t b0, b1;
    misalign_share(j->n, 16, t, n, &b0, &b1);
    if (b0 < b1) silu_mul_range(j->out + b0, j->gate + b0, j->up + b0, b1 - b0);
}

void misalign_silu_mul(float *out, const float *gate, const float *up, size_t n) {
    misalign_silu_mul_threads(out, gate, up, n, 1);
}

// In prefill the three arrays are megabytes each (256 tokens x 4864 x 3 arrays = 15 MB per
// layer): one core streamed them at 5% of a bf16-products prefill's time.
void misalign_silu_mul_threads(float *out, const float *gate, const float *up, size_t n, size_t threads) {
    struct silu_job j = {out, gate, up, n};
    if (threads > 1 && n >= (1u << 16)) misalign_parallel(threads, silu_task, &j);
    else silu_mul_range(out, gate, up, n);
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
// input rows. Explicit 16-lane vectors (clang vector extensions, lowered to AVX-512, AVX2 or
// SSE by target_clones) and a compile-time block size keep every accumulator in a register;
// left to the auto-vectoriser, this loop nest ran at a tenth of the memory bandwidth. The
// blocks are macros, not helper functions, so they are compiled for each clone's target.
typedef uint32_t v16u __attribute__((vector_size(64), aligned(4)));
typedef uint16_t v16h __attribute__((vector_size(32), aligned(2)));

#define LOADV_BF16(p) ((v16f)(__builtin_convertvector(*(const v16h *)(p), v16u) << 16))
// 8-lane forms for the streamed products below (unaligned loads: W rows lie wherever the file
// put them).
typedef float v8fu __attribute__((vector_size(32), aligned(4)));
typedef uint32_t v8u __attribute__((vector_size(32), aligned(4)));
typedef uint16_t v8h __attribute__((vector_size(16), aligned(2)));
#define LOADV8_F32(p) ((v8f)(*(const v8fu *)(p)))
#define LOADV8_BF16(p) ((v8f)(__builtin_convertvector(*(const v8h *)(p), v8u) << 16))
#define HSUM8(v, out)                                                                          \
    do {                                                                                       \
        v4f h4 = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7); \
        (out) = (h4[0] + h4[2]) + (h4[1] + h4[3]);                                             \
    } while (0)
#define LOAD1_F32(p, i) ((p)[i])
#define LOAD1_BF16(p, i) misalign_bf16_value((p)[i])

static inline float misalign_bf16_value(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

// A register tile: NO rows of W against MB rows of x, NO * MB accumulators. Each step over k
// loads NO + MB vectors for NO * MB fused multiply-adds, so with 4 x 6 the loop is bound by
// the FMA units, not by loads (one row of W against 8 rows of x, the previous design, made
// 9 loads per 8 FMAs and ran at a fifth of the FMA peak). Rows of x are the inner loop, so a
// tile of W (4 rows, 14 KB at in = 896) is read from memory once and from L1 for every
// further group of x rows.
#define MATMUL_TILE(NO, MB, LOADV, LOAD1)                                                      \
    for (; r + MB <= m; r += MB) {                                                             \
        const float *xb = x + r * ldx;                                                         \
        v16f acc[NO][MB];                                                                      \
        for (int i = 0; i < NO; i++)                                                           \
            for (int j = 0; j < MB; j++) acc[i][j] = (v16f){0};                                \
        size_t k = 0;                                                                          \
        for (; k + 16 <= in; k += 16) {                                                        \
            v16f xv[MB];                                                                       \
            for (int j = 0; j < MB; j++) xv[j] = LOADV_F32(xb + j * ldx + k);                  \
            if (NO > 1 && r == 0)                                                              \
                for (int i = 0; i < NO; i++) __builtin_prefetch(wo + (NO + i) * in + k + 64);   \
            for (int i = 0; i < NO; i++) {                                                     \
                v16f wv = LOADV(wo + i * in + k);                                              \
                for (int j = 0; j < MB; j++) acc[i][j] += wv * xv[j];                          \
            }                                                                                  \
        }                                                                                      \
        for (int i = 0; i < NO; i++) {                                                         \
            for (int j = 0; j < MB; j++) {                                                     \
                float t;                                                                       \
                HSUM16(acc[i][j], t);                                                          \
                for (size_t kk = k; kk < in; kk++) t += LOAD1(wo + i * in, kk) * xb[j * ldx + kk]; \
                float *dst = y + (r + j) * ldy + o + i;                                        \
                *dst = accumulate ? *dst + t : t;                                              \
            }                                                                                  \
        }                                                                                      \
    }

// With one to four rows of x the product is bound by memory, not FMAs: W is then read as one
// sequential stream, row after row (U accumulators hide the FMA latency), which the hardware
// prefetcher follows; the 4-row tiles above read four short streams at once and ran at a
// third of the bandwidth with a single row of x. VT is the vector type, L its lanes: one or
// two rows of x read W 8 lanes at a time, even where 16 are available, because on Zen 4 the
// stream alone ran faster so (1 GB of bf16 weights, two threads, ten alternating runs: 8 lanes
// faster in each, median 1.26x; `misalign-bench matmul --out 151936`, one thread, one row:
// bf16 1.2x, f32 1.1x). In the whole decoding step the gain is within this host's noise (eight
// alternating runs: median +3%, faster in 5). With three or four rows the 8-lane loop's extra
// instructions made it slower, so those keep 16 lanes.
#define MATMUL_STREAM(MB, U, VT, L, LOADW, LOADX, HSUM, LOAD1)                                 \
    for (size_t o = o0; o < o1; o++) {                                                         \
        const __typeof__(*w) *wr = w + o * in;                                                 \
        VT acc[MB][U];                                                                         \
        for (int j = 0; j < MB; j++)                                                           \
            for (int u = 0; u < U; u++) acc[j][u] = (VT){0};                                   \
        size_t k = 0;                                                                          \
        for (; k + L * U <= in; k += L * U) {                                                  \
            for (int u = 0; u < U; u++) {                                                      \
                VT wv = LOADW(wr + k + L * u);                                                 \
                for (int j = 0; j < MB; j++) acc[j][u] += wv * LOADX(x + j * ldx + k + L * u); \
            }                                                                                  \
        }                                                                                      \
        for (; k + L <= in; k += L) {                                                          \
            VT wv = LOADW(wr + k);                                                             \
            for (int j = 0; j < MB; j++) acc[j][0] += wv * LOADX(x + j * ldx + k);             \
        }                                                                                      \
        for (int j = 0; j < MB; j++) {                                                         \
            for (int u = 1; u < U; u++) acc[j][0] += acc[j][u];                                \
            float t;                                                                           \
            HSUM(acc[j][0], t);                                                                \
            for (size_t kk = k; kk < in; kk++) t += LOAD1(wr, kk) * x[j * ldx + kk];           \
            float *dst = y + j * ldy + o;                                                      \
            *dst = accumulate ? *dst + t : t;                                                  \
        }                                                                                      \
    }

#define DEFINE_MATMUL(SUFFIX, WTYPE, LOADV, LOADV8, LOAD1)                                     \
    MISALIGN_CLONES                                                                            \
    void misalign_matmul_##SUFFIX##_t(float *y, size_t ldy, const float *x, size_t ldx,       \
                                      const WTYPE *w, size_t m, size_t in, size_t o0,          \
                                      size_t o1, int accumulate) {                            \
        switch (m) {                                                                           \
        case 1: { MATMUL_STREAM(1, 8, v8f, 8, LOADV8, LOADV8_F32, HSUM8, LOAD1) return; }     \
        case 2: { MATMUL_STREAM(2, 4, v8f, 8, LOADV8, LOADV8_F32, HSUM8, LOAD1) return; }     \
        case 3: { MATMUL_STREAM(3, 2, v16f, 16, LOADV, LOADV_F32, HSUM16, LOAD1) return; }   \
        case 4: { MATMUL_STREAM(4, 2, v16f, 16, LOADV, LOADV_F32, HSUM16, LOAD1) return; }   \
        default: break;                                                                        \
        }                                                                                      \
        size_t o = o0;                                                                         \
        for (; o + 4 <= o1; o += 4) {                                                          \
            const WTYPE *wo = w + o * in;                                                      \
            size_t r = 0;                                                                      \
            MATMUL_TILE(4, 6, LOADV, LOAD1)                                                    \
            MATMUL_TILE(4, 3, LOADV, LOAD1)                                                    \
            MATMUL_TILE(4, 2, LOADV, LOAD1)                                                    \
            MATMUL_TILE(4, 1, LOADV, LOAD1)                                                    \
        }                                                                                      \
        for (; o < o1; o++) {                                                                  \
            const WTYPE *wo = w + o * in;                                                      \
            size_t r = 0;                                                                      \
            MATMUL_TILE(1, 8, LOADV, LOAD1)                                                    \
            MATMUL_TILE(1, 4, LOADV, LOAD1)                                                    \
            MATMUL_TILE(1, 2, LOADV, LOAD1)                                                    \
            MATMUL_TILE(1, 1, LOADV, LOAD1)                                                    \
        }                                                                                      \
    }

DEFINE_MATMUL(bf16, uint16_t, LOADV_BF16, LOADV8_BF16, LOAD1_BF16)
DEFINE_MATMUL(f32, float, LOADV_F32, LOADV8_F32, LOAD1_F32)
