// dx = bf16(dy) W on the bf16 dot-product instruction (vdpbf16ps, AVX512_BF16): the input
// gradient of a frozen bf16 product in training's backward, with the sum over W's rows (the
// forward's outputs). dy is rounded to bf16 (nearest even), as PyTorch's bf16 autocast rounds
// the gradient it multiplies; pairs of products are exact and summed in f32.
//
// Layout. vdpbf16ps takes per lane a pair along the summed index, here W's rows o and o + 1.
// A row of the rounded dy holds its pairs as 32-bit words already: one word is broadcast to all
// lanes. W [k, n] is packed by panels: for 32 columns and a pair of rows, two vectors whose
// word j is (W[o, col + j], W[o + 1, col + j]), built from two 64-byte row pieces by one
// permute each. A tile is MR rows of dx by 32 columns in MR x 2 registers, stored as they are
// (its lanes run along dx's rows), so nothing is transposed. The packed panel (16 column
// blocks by KC pairs, 512 KB) stays in L2 while every tile of dx's rows passes over it; dx
// tiles are reloaded once per KC pairs.
#include "misalign_kernels.h"

#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define MR 12   // rows of dx per tile: 24 accumulators + 2 W vectors + a broadcast
#define KC 256  // pairs of W's rows per packed panel
#define NCB 16  // 32-column blocks per packed panel
#define PANEL_WORDS ((size_t)NCB * KC * 32)

struct nn_job {
    float *c;
    size_t ldc, m, n;
    const misalign_nn_term *terms;
    size_t count;
    const uint32_t *const *ab; // per term: the rounded rows [m][k2] words
    const size_t *k2;
    int accumulate;
    uint32_t *panels; // one packed panel per task
};

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define ROW_PTR(i) const uint32_t *a##i = ab + (t0 + ((i) < valid ? (i) : valid - 1)) * k2 + p0;
#define ACC_DECL(i) __m512 c##i##a, c##i##b;
#define ACC_ZERO(i) c##i##a = _mm512_setzero_ps(); c##i##b = _mm512_setzero_ps();
#define ACC_LOAD(i)                                                                            \
    if ((i) < valid) {                                                                         \
        const float *src = j->c + (t0 + (i)) * j->ldc + col;                                   \
        c##i##a = _mm512_maskz_loadu_ps(ma, src);                                              \
        c##i##b = _mm512_maskz_loadu_ps(mb, src + 16);                                         \
    } else {                                                                                   \
        c##i##a = _mm512_setzero_ps(); c##i##b = _mm512_setzero_ps();                           \
    }
#define ACC_STEP(i)                                                                            \
    {                                                                                          \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)a##i[p]);                               \
        c##i##a = _mm512_dpbf16_ps(c##i##a, av, w0);                                           \
        c##i##b = _mm512_dpbf16_ps(c##i##b, av, w1);                                           \
    }
#define ACC_SAVE(i)                                                                            \
    if ((i) < valid) {                                                                         \
        float *dst = j->c + (t0 + (i)) * j->ldc + col;                                         \
        _mm512_mask_storeu_ps(dst, ma, c##i##a);                                               \
        _mm512_mask_storeu_ps(dst + 16, mb, c##i##b);                                          \
    }

// Packs rows [2 p0, 2 p1) of W (zero past k) for column blocks [b0, b1) into panel[block][pair][32].
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void pack_panel(uint32_t *panel, const misalign_nn_term *t, size_t n, size_t p0, size_t p1, size_t b0, size_t b1) {
    static const uint16_t lo_idx[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                        8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
    static const uint16_t hi_idx[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55,
                                        24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63};
    __m512i lo = _mm512_loadu_si512(lo_idx), hi = _mm512_loadu_si512(hi_idx);
    size_t pairs = p1 - p0;
    for (size_t b = b0; b < b1; b++) {
        size_t col = b * 32, left = n - col;
        __mmask32 mask = left >= 32 ? 0xffffffffu : (((__mmask32)1 << left) - 1);
        uint32_t *dst = panel + (b - b0) * KC * 32;
        for (size_t p = 0; p < pairs; p++) {
            size_t o = 2 * (p0 + p);
            __m512i r0 = _mm512_maskz_loadu_epi16(mask, t->w + o * t->ldw + col);
            __m512i r1 = o + 1 < t->k ? _mm512_maskz_loadu_epi16(mask, t->w + (o + 1) * t->ldw + col) : _mm512_setzero_si512();
            _mm512_store_si512(dst + p * 32, _mm512_permutex2var_epi16(r0, lo, r1));
            _mm512_store_si512(dst + p * 32 + 16, _mm512_permutex2var_epi16(r0, hi, r1));
        }
    }
}

// All tiles of dx's rows over one packed panel: columns blocks [b0, b1), pairs [p0, p1).
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void panel_tiles(const struct nn_job *j, const uint32_t *panel, const uint32_t *ab, size_t k2, size_t p0, size_t p1,
                        size_t b0, size_t b1, int first) {
    size_t pairs = p1 - p0;
    for (size_t t0 = 0; t0 < j->m; t0 += MR) {
        size_t valid = j->m - t0 < MR ? j->m - t0 : MR;
        ROWS(ROW_PTR)
        for (size_t b = b0; b < b1; b++) {
            size_t col = b * 32, left = j->n - col;
            __mmask16 ma = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
            __mmask16 mb = left >= 32 ? 0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            const uint32_t *wp = panel + (b - b0) * KC * 32;
            ROWS(ACC_DECL)
            if (first) {
                ROWS(ACC_ZERO)
            } else {
                ROWS(ACC_LOAD)
            }
            for (size_t p = 0; p < pairs; p++) {
                __m512bh w0 = (__m512bh)_mm512_load_si512(wp + p * 32);
                __m512bh w1 = (__m512bh)_mm512_load_si512(wp + p * 32 + 16);
                ROWS(ACC_STEP)
            }
            ROWS(ACC_SAVE)
        }
    }
}

// Task t: its share of the 32-column blocks, NCB at a time, every term's pairs in order.
static void nn_task(void *ctx, size_t t, size_t nt) {
    const struct nn_job *j = ctx;
    size_t blocks = (j->n + 31) / 32, lo, hi;
    misalign_share(blocks, 1, t, nt, &lo, &hi);
    if (lo >= hi) return;
    uint32_t *panel = j->panels + t * PANEL_WORDS;
    for (size_t b0 = lo; b0 < hi; b0 += NCB) {
        size_t b1 = b0 + NCB < hi ? b0 + NCB : hi;
        int first = !j->accumulate;
        for (size_t q = 0; q < j->count; q++) {
            for (size_t p0 = 0; p0 < j->k2[q]; p0 += KC) {
                size_t p1 = p0 + KC < j->k2[q] ? p0 + KC : j->k2[q];
                pack_panel(panel, &j->terms[q], j->n, p0, p1, b0, b1);
                panel_tiles(j, panel, j->ab[q], j->k2[q], p0, p1, b0, b1, first);
                first = 0;
            }
        }
        if (first) { // nothing to sum (k = 0): the product is zero
            size_t c0 = b0 * 32, c1 = b1 * 32 < j->n ? b1 * 32 : j->n;
            for (size_t r = 0; r < j->m; r++) memset(j->c + r * j->ldc + c0, 0, (c1 - c0) * sizeof(float));
        }
    }
}

struct round_job {
    const misalign_nn_term *terms;
    size_t count, m;
    uint32_t *const *ab;
    const size_t *k2;
};

// Task t rounds its share of the rows of every term's a; an odd k's last word gets a zero top.
static void round_task(void *ctx, size_t t, size_t nt) {
    const struct round_job *j = ctx;
    size_t lo, hi;
    misalign_share(j->m, 1, t, nt, &lo, &hi);
    for (size_t q = 0; q < j->count; q++) {
        const misalign_nn_term *term = &j->terms[q];
        for (size_t r = lo; r < hi; r++) {
            uint16_t *row = (uint16_t *)(j->ab[q] + r * j->k2[q]);
            misalign_f32_to_bf16(row, term->a + r * term->lda, term->k);
            if (term->k % 2) row[term->k] = 0;
        }
    }
}

static int has_bf16_dot_nn(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
    return cached;
}

int misalign_matmul_bf16_dot_nn_group(float *c, size_t ldc, const misalign_nn_term *terms, size_t count, size_t m, size_t n,
                                      int accumulate, size_t threads) {
    if (!has_bf16_dot_nn() || count == 0 || count > 8) return 0;
    if (m == 0 || n == 0) return 1;
    size_t k2[8], offset[8], words = 0;
    for (size_t q = 0; q < count; q++) {
        k2[q] = (terms[q].k + 1) / 2;
        offset[q] = words;
        words += m * k2[q];
    }
    // The rounded rows and one packed panel per task (512 KB), kept per calling thread and
    // grown as needed (Qwen2.5-0.5B's lm_head: 128 rows x 151,936 values, 39 MB).
    if (threads == 0) threads = 1;
    if (threads > 64) threads = 64; // misalign_parallel's most
    static __thread void *ab_buffer, *panel_buffer;
    static __thread size_t ab_bytes, panel_bytes;
    uint32_t *all = misalign_thread_buffer(&ab_buffer, &ab_bytes, words * sizeof(uint32_t));
    uint32_t *panels = misalign_thread_buffer(&panel_buffer, &panel_bytes, threads * PANEL_WORDS * sizeof(uint32_t));
    if (!all || !panels) return 0;
    uint32_t *ab[8];
    for (size_t q = 0; q < count; q++) ab[q] = all + offset[q];
    struct round_job r = {terms, count, m, ab, k2};
    misalign_parallel(threads, round_task, &r);
    struct nn_job j = {c, ldc, m, n, terms, count, (const uint32_t *const *)ab, k2, accumulate, panels};
    misalign_parallel(threads, nn_task, &j); // one thread: runs on the caller
    return 1;
}

#else
int misalign_matmul_bf16_dot_nn_group(float *c, size_t ldc, const misalign_nn_term *terms, size_t count, size_t m, size_t n,
                                      int accumulate, size_t threads) {
    (void)c; (void)ldc; (void)terms; (void)count; (void)m; (void)n; (void)accumulate; (void)threads;
    return 0;
}
#endif

int misalign_matmul_bf16_dot_nn(float *c, size_t ldc, const float *a, size_t lda, const uint16_t *w, size_t ldw, size_t m,
                                size_t k, size_t n, int accumulate, size_t threads) {
    misalign_nn_term one = {a, lda, w, ldw, k};
    return misalign_matmul_bf16_dot_nn_group(c, ldc, &one, 1, m, n, accumulate, threads);
}
