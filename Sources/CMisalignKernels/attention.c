// Causal attention over a KV cache, on the kernels' thread pool. It replaced two BLAS calls
// per key/value head and segment: in decoding those were hundreds of tiny calls per step, and
// in prefill OpenBLAS's own threads, spinning between calls, took a core from the pool's.
#include "misalign_kernels.h"

#include <math.h>
#include <stdlib.h>

#include "clones.h"
#include "vec.h"

struct attention_job {
    float *out;
    size_t ldo;
    const float *q;
    size_t ldq, count, start, heads, group, hd;
    float scale;
    const float *const *keys;   // [kv_heads][segments]
    const float *const *values; // [kv_heads][segments]
    const size_t *first, *len;  // [segments]
    size_t segments;
};

#define ROWS 4 // query rows that share each key and value they load

// Scores of up to ROWS query rows (q + r * ldq) against keys [n, hd] into s + r * stride.
static inline __attribute__((always_inline)) void scores_block(float *s, size_t stride, const float *q, size_t ldq, size_t rows, const float *keys, size_t n,
                         size_t hd, float scale) {
    for (size_t j = 0; j < n; j++) {
        const float *k = keys + j * hd;
        v16f acc[ROWS] = {{0}};
        size_t d = 0;
        for (; d + 16 <= hd; d += 16) {
            v16f kv = LOADV_F32(k + d);
            for (size_t r = 0; r < ROWS; r++)
                if (r < rows) acc[r] += kv * LOADV_F32(q + r * ldq + d);
        }
        for (size_t r = 0; r < rows; r++) {
            float t;
            HSUM16(acc[r], t);
            for (size_t dd = d; dd < hd; dd++) t += q[r * ldq + dd] * k[dd];
            s[r * stride + j] = t * scale;
        }
    }
}

// o[r] += sum_j p[r][j] v[j] for up to ROWS rows; o: [rows, hd] spaced ldo apart.
static inline __attribute__((always_inline)) void values_block(float *o, size_t ldo, const float *p, size_t stride, size_t rows, const float *values, size_t n,
                         size_t hd) {
    size_t d = 0;
    for (; d + 16 <= hd; d += 16) {
        v16f acc[ROWS] = {{0}};
        for (size_t j = 0; j < n; j++) {
            v16f vv = LOADV_F32(values + j * hd + d);
            for (size_t r = 0; r < ROWS; r++)
                if (r < rows) acc[r] += p[r * stride + j] * vv;
        }
        for (size_t r = 0; r < rows; r++) *(v16f *)(o + r * ldo + d) += acc[r];
    }
    for (; d < hd; d++)
        for (size_t r = 0; r < rows; r++) {
            float t = 0;
            for (size_t j = 0; j < n; j++) t += p[r * stride + j] * values[j * hd + d];
            o[r * ldo + d] += t;
        }
}

// Softmax of the first n entries of x in place; the sum in double, as misalign_softmax_rows.
static inline __attribute__((always_inline)) void softmax_row(float *x, size_t n) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float part[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) {
            float e = misalign_exp(x[i + l] - mx);
            x[i + l] = e;
            part[l] += e;
        }
    double sum = 0;
    for (; i < n; i++) {
        float e = misalign_exp(x[i] - mx);
        x[i] = e;
        sum += e;
    }
    for (int l = 0; l < 16; l++) sum += part[l];
    float inv = (float)(1.0 / sum);
    for (size_t k = 0; k < n; k++) x[k] *= inv;
}

// Work items are (head, block of ROWS rows), dealt out round-robin: with a causal mask later
// rows cost more, and interleaving gives every task a similar mix.
// Cloned per instruction set with the helpers above inlined into each clone.
MISALIGN_CLONES
static void attention_task(void *ctx, size_t t, size_t n) {
    const struct attention_job *j = ctx;
    size_t blocks = (j->count + ROWS - 1) / ROWS, items = j->heads * blocks;
    size_t total = j->start + j->count;
    float *s = malloc(ROWS * total * sizeof(float));
    if (!s) abort(); // a few KB per task; nothing sensible to return to
    for (size_t item = t; item < items; item += n) {
        size_t h = item / blocks, b = item % blocks;
        size_t r0 = b * ROWS, rows = j->count - r0 < ROWS ? j->count - r0 : ROWS;
        size_t g = h / j->group;
        const float *q = j->q + r0 * j->ldq + h * j->hd;
        float *o = j->out + r0 * j->ldo + h * j->hd;
        size_t last = j->start + r0 + rows; // keys 0 ..< last cover every row of the block
        for (size_t seg = 0; seg < j->segments && j->first[seg] < last; seg++) {
            size_t len = j->len[seg] < last - j->first[seg] ? j->len[seg] : last - j->first[seg];
            scores_block(s + j->first[seg], total, q, j->ldq, rows, j->keys[g * j->segments + seg], len, j->hd, j->scale);
        }
        for (size_t r = 0; r < rows; r++) {
            softmax_row(s + r * total, j->start + r0 + r + 1);
            for (size_t k = j->start + r0 + r + 1; k < last; k++) s[r * total + k] = 0; // masked
            for (size_t d = 0; d < j->hd; d++) o[r * j->ldo + d] = 0;
        }
        for (size_t seg = 0; seg < j->segments && j->first[seg] < last; seg++) {
            size_t len = j->len[seg] < last - j->first[seg] ? j->len[seg] : last - j->first[seg];
            values_block(o, j->ldo, s + j->first[seg], total, rows, j->values[g * j->segments + seg], len, j->hd);
        }
    }
    free(s);
}

void misalign_attention(float *out, size_t ldo, const float *q, size_t ldq, size_t count, size_t start, size_t heads,
                        size_t kv_heads, size_t hd, float scale, const float *const *keys, const float *const *values,
                        const size_t *first, const size_t *len, size_t segments, size_t threads) {
    struct attention_job j = {out, ldo, q, ldq, count, start, heads, heads / kv_heads, hd, scale,
                              keys, values, first, len, segments};
    if (threads > 1 && heads * count > 1) misalign_parallel(threads, attention_task, &j);
    else attention_task(&j, 0, 1);
}
