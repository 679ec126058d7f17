// Causal attention over a KV cache, on the kernels' thread pool, for the new rows of several
// sequences in one job.
//
// A work item is one key/value head of one sequence and up to ROWS of its new rows. With
// grouped-query heads every query head of the group reads the same keys and values, so an item
// holds ROWS x group query vectors (28 for Qwen2.5's groups of 7) and each key or value it
// loads serves all of them from L1.
//
// Scores come 16 keys at a time: 16 dot products in 16 registers, then one transposing tree
// of shuffles and adds turns them into one vector of 16 scores. The kernel this replaced summed
// every dot product across its lanes on its own and kept its accumulators in an array, which
// clang spilled to the stack: about 100 cycles per head and key (26 ns), 9% of a decoding
// step at 800 positions.
#include "misalign_kernels.h"

#include <math.h>
#include <stdlib.h>

#include "clones.h"
#include "vec.h"

#define ROWS 4 // new rows of one sequence per work item (prefill)

struct attention_job {
    const misalign_attention_seq *seqs;
    size_t nseq;
    size_t ldo, ldq, kv_heads, group, hd;
    float scale;
    float softcap;  // 0: none; else scores become softcap * tanh(score / softcap)
    size_t window;  // 0: none; else row at position p sees keys p - window < j <= p
    const size_t *item0; // [nseq + 1]: the first item of each sequence
    size_t stride;       // floats per row of scores: the longest sequence's length
};

#define SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
// One level of the transposing sum: each takes two vectors holding the partial sums of some
// keys and returns one holding half as many partials of each, keys in order.
#define SUM1(x, y) (SHUF(x, y, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) + \
                    SHUF(x, y, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
#define SUM2(x, y) (SHUF(x, y, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) + \
                    SHUF(x, y, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31))
#define SUM3(x, y) (SHUF(x, y, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) + \
                    SHUF(x, y, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31))
#define SUM4(x, y) (SHUF(x, y, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) + \
                    SHUF(x, y, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31))
#define K16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define DOT_DECL(i) v16f a##i = {0};
#define DOT_STEP(i) a##i += LOADV_F32(k + (i) * hd + d) * qv;

// s[i] = scale * (q . k_i) for the 16 keys k_i = k + i * hd.
static inline __attribute__((always_inline)) void scores16(float *s, const float *q, const float *k, size_t hd, float scale) {
    K16(DOT_DECL)
    size_t d = 0;
    for (; d + 16 <= hd; d += 16) {
        v16f qv = LOADV_F32(q + d);
        K16(DOT_STEP)
    }
    v16f b0 = SUM1(a0, a1), b1 = SUM1(a2, a3), b2 = SUM1(a4, a5), b3 = SUM1(a6, a7);
    v16f b4 = SUM1(a8, a9), b5 = SUM1(a10, a11), b6 = SUM1(a12, a13), b7 = SUM1(a14, a15);
    v16f c0 = SUM2(b0, b1), c1 = SUM2(b2, b3), c2 = SUM2(b4, b5), c3 = SUM2(b6, b7);
    v16f sum = SUM4(SUM3(c0, c1), SUM3(c2, c3));
    for (; d < hd; d++) // a head size that is not a multiple of 16
        for (int i = 0; i < 16; i++) sum[i] += q[d] * k[i * hd + d];
    *(v16f *)s = sum * scale;
}

// s = scale * (q . k) for one key.
static inline __attribute__((always_inline)) float score1(const float *q, const float *k, size_t hd, float scale) {
    v16f acc = {0};
    size_t d = 0;
    for (; d + 16 <= hd; d += 16) acc += LOADV_F32(k + d) * LOADV_F32(q + d);
    float t;
    HSUM16(acc, t);
    for (; d < hd; d++) t += q[d] * k[d];
    return t * scale;
}

// Softmax of x[lo ..< visible] in place, then x[0 ..< lo] = x[visible ..< last] = 0 (masked;
// lo > 0 only with a sliding window). With softcap > 0 the scores are first soft-capped
// (Gemma 2). The sum of the exponentials is taken in 16 float lanes, and across them in double.
static inline __attribute__((always_inline)) void softmax_masked(float *x, size_t lo, size_t visible, size_t last, float softcap) {
    if (softcap > 0)
        for (size_t i = lo; i < visible; i++) x[i] = misalign_tanh(x[i] / softcap) * softcap;
    v16f m16 = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY,
                -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    size_t i = lo;
    for (; i + 16 <= visible; i += 16) m16 = __builtin_elementwise_max(m16, LOADV_F32(x + i));
    float mx = __builtin_reduce_max(m16);
    for (; i < visible; i++) mx = x[i] > mx ? x[i] : mx;
    for (i = lo; i < visible; i++) x[i] = misalign_exp(x[i] - mx);
    v16f part = {0};
    for (i = lo; i + 16 <= visible; i += 16) part += LOADV_F32(x + i);
    double sum = 0;
    for (; i < visible; i++) sum += x[i];
    for (int l = 0; l < 16; l++) sum += part[l];
    float inv = (float)(1.0 / sum);
    for (i = 0; i < lo; i++) x[i] = 0;
    for (i = lo; i < visible; i++) x[i] *= inv;
    for (; i < last; i++) x[i] = 0;
}

#define V4(X) X(0) X(1) X(2) X(3)
#define VAL_DECL(c) v16f a0##c = {0}, a1##c = {0}, a2##c = {0}, a3##c = {0};
#define VAL_STEP(c)                                     \
    {                                                   \
        v16f vv = LOADV_F32(v + j * hd + d + 16 * (c)); \
        a0##c += p0[j] * vv;                            \
        a1##c += p1[j] * vv;                            \
        a2##c += p2[j] * vv;                            \
        a3##c += p3[j] * vv;                            \
    }
#define VAL_SAVE(c)                                  \
    *(v16f *)(o0 + d + 16 * (c)) += a0##c;           \
    *(v16f *)(o1 + d + 16 * (c)) += a1##c;           \
    *(v16f *)(o2 + d + 16 * (c)) += a2##c;           \
    *(v16f *)(o3 + d + 16 * (c)) += a3##c;

// o_i += sum_j p_i[j] v_j over the n values v_j = v + j * hd, for four query vectors: 4 x 64
// lanes in 16 registers, each value loaded once for the four.
static inline __attribute__((always_inline)) void values4(float *o0, float *o1, float *o2, float *o3, const float *p0,
                                                          const float *p1, const float *p2, const float *p3,
                                                          const float *v, size_t n, size_t hd) {
    size_t d = 0;
    for (; d + 64 <= hd; d += 64) {
        V4(VAL_DECL)
        for (size_t j = 0; j < n; j++) { V4(VAL_STEP) }
        V4(VAL_SAVE)
    }
    for (; d + 16 <= hd; d += 16) {
        VAL_DECL(0)
        for (size_t j = 0; j < n; j++) VAL_STEP(0)
        VAL_SAVE(0)
    }
    for (; d < hd; d++) {
        float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
        for (size_t j = 0; j < n; j++) {
            float x = v[j * hd + d];
            t0 += p0[j] * x; t1 += p1[j] * x; t2 += p2[j] * x; t3 += p3[j] * x;
        }
        o0[d] += t0; o1[d] += t1; o2[d] += t2; o3[d] += t3;
    }
}

// One item: key/value head g of sequence sq, its new rows r0 ..< r0 + rows. s: scratch of
// ROWS * group score rows of j->stride floats, a zero row, and hd floats to write unused
// query slots to.
static inline __attribute__((always_inline)) void attention_item(const struct attention_job *j, const misalign_attention_seq *sq,
                                                                 size_t g, size_t r0, size_t rows, float *s) {
    size_t G = j->group, hd = j->hd, stride = j->stride, nq = rows * G;
    size_t last = sq->start + r0 + rows; // keys 0 ..< last cover every row of the item
    // With a sliding window no row of the item sees keys before lo0 (its first row's first key):
    // their scores are neither computed nor read, and their values not summed.
    size_t lo0 = j->window > 0 && sq->start + r0 + 1 > j->window ? sq->start + r0 + 1 - j->window : 0;
    float *zero = s + ROWS * G * stride, *spare = zero + stride;
    // Query vector i is head g * G + i % G of new row r0 + i / G.
#define QV(i) (sq->q + (r0 + (i) / G) * j->ldq + (g * G + (i) % G) * hd)
#define OUT(i) (sq->out + (r0 + (i) / G) * j->ldo + (g * G + (i) % G) * hd)
    for (size_t seg = 0; seg < sq->segments && sq->first[seg] < last; seg++) {
        size_t f = sq->first[seg], len = sq->len[seg] < last - f ? sq->len[seg] : last - f;
        const float *keys = sq->keys[g * sq->segments + seg];
        size_t k = lo0 > f ? lo0 - f : 0;
        // Qwen2.5's head sizes as constants, so the 16 keys' addresses are fixed offsets.
        for (; k + 16 <= len; k += 16)
            for (size_t i = 0; i < nq; i++) {
                float *si = s + i * stride + f + k;
                if (hd == 64) scores16(si, QV(i), keys + k * 64, 64, j->scale);
                else if (hd == 128) scores16(si, QV(i), keys + k * 128, 128, j->scale);
                else scores16(si, QV(i), keys + k * hd, hd, j->scale);
            }
        for (; k < len; k++)
            for (size_t i = 0; i < nq; i++) s[i * stride + f + k] = score1(QV(i), keys + k * hd, hd, j->scale);
    }
    for (size_t i = 0; i < nq; i++) {
        size_t visible = sq->start + r0 + i / G + 1;
        size_t lo = j->window > 0 && visible > j->window ? visible - j->window : 0;
        softmax_masked(s + i * stride, lo, visible, last, j->softcap);
        float *o = OUT(i);
        for (size_t d = 0; d < hd; d++) o[d] = 0;
    }
    for (size_t seg = 0; seg < sq->segments && sq->first[seg] < last; seg++) {
        size_t f = sq->first[seg], len = sq->len[seg] < last - f ? sq->len[seg] : last - f;
        size_t k0 = lo0 > f ? lo0 - f : 0;
        if (k0 >= len) continue; // the whole run is before the window
        const float *values = sq->values[g * sq->segments + seg] + k0 * hd;
        // Query slots past nq (the last group of four) read zeros and write to the spare row.
        for (size_t i = 0; i < nq; i += 4) {
            float *o[4];
            const float *p[4];
            for (size_t u = 0; u < 4; u++) {
                o[u] = i + u < nq ? OUT(i + u) : spare;
                p[u] = (i + u < nq ? s + (i + u) * stride : zero) + f + k0;
            }
            values4(o[0], o[1], o[2], o[3], p[0], p[1], p[2], p[3], values, len - k0, hd);
        }
    }
#undef QV
#undef OUT
}

// Items are dealt out round-robin; within a sequence they run row block by row block, each
// block's key/value heads side by side, so with a causal mask (later rows cost more) every
// task gets a similar mix. Cloned per instruction set with the helpers above inlined.
MISALIGN_CLONES
static void attention_task(void *ctx, size_t t, size_t n) {
    const struct attention_job *j = ctx;
    size_t items = j->item0[j->nseq];
    if (t >= items) return;
    // Scratch kept per thread and grown as needed (29 rows of scores: 91 KB at 800 positions).
    // Allocated per call, its pages were faulted in afresh on every layer.
    static __thread void *scratch;
    static __thread size_t scratch_bytes;
    float *s = misalign_thread_buffer(&scratch, &scratch_bytes, ((ROWS * j->group + 1) * j->stride + j->hd) * sizeof(float));
    if (!s) abort(); // nothing sensible to return to
    for (size_t i = 0; i < j->stride; i++) s[ROWS * j->group * j->stride + i] = 0;
    size_t q = 0;
    for (size_t item = t; item < items; item += n) {
        while (j->item0[q + 1] <= item) q++;
        const misalign_attention_seq *sq = &j->seqs[q];
        size_t local = item - j->item0[q], b = local / j->kv_heads, g = local % j->kv_heads;
        size_t r0 = b * ROWS, rows = sq->count - r0 < ROWS ? sq->count - r0 : ROWS;
        attention_item(j, sq, g, r0, rows, s);
    }
}

void misalign_attention_batch(const misalign_attention_seq *seqs, size_t nseq, size_t ldo, size_t ldq, size_t heads,
                              size_t kv_heads, size_t hd, float scale, size_t threads) {
    misalign_attention_batch_capped(seqs, nseq, ldo, ldq, heads, kv_heads, hd, scale, 0, 0, threads);
}

void misalign_attention_batch_capped(const misalign_attention_seq *seqs, size_t nseq, size_t ldo, size_t ldq, size_t heads,
                                     size_t kv_heads, size_t hd, float scale, float softcap, size_t window, size_t threads) {
    size_t *item0 = malloc((nseq + 1) * sizeof(size_t));
    if (!item0) abort();
    size_t stride = 0;
    item0[0] = 0;
    for (size_t i = 0; i < nseq; i++) {
        size_t total = seqs[i].start + seqs[i].count;
        stride = total > stride ? total : stride;
        item0[i + 1] = item0[i] + (seqs[i].count + ROWS - 1) / ROWS * kv_heads;
    }
    struct attention_job j = {seqs, nseq, ldo, ldq, kv_heads, heads / kv_heads, hd, scale, softcap, window, item0, stride};
    if (threads > 1 && item0[nseq] > 1) misalign_parallel(threads, attention_task, &j);
    else attention_task(&j, 0, 1);
    free(item0);
}

void misalign_attention(float *out, size_t ldo, const float *q, size_t ldq, size_t count, size_t start, size_t heads,
                        size_t kv_heads, size_t hd, float scale, const float *const *keys, const float *const *values,
                        const size_t *first, const size_t *len, size_t segments, size_t threads) {
    misalign_attention_seq one = {out, q, count, start, keys, values, first, len, segments};
    misalign_attention_batch(&one, 1, ldo, ldq, heads, kv_heads, hd, scale, threads);
}
