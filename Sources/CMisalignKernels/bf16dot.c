// y = bf16(x) W^T on the CPU's bf16 dot-product instruction (vdpbf16ps, AVX512_BF16): the
// opt-in bf16 compute precision. vdpbf16ps multiplies pairs of bf16 values exactly and adds
// both products to an f32 lane, at twice the rate of f32 FMAs, so activations must be bf16
// too: x is rounded to nearest even, as PyTorch's `.to(torch.bfloat16)` rounds it.
//
// Layout. A 32-bit word of a bf16 row holds a pair (k, k + 1), low half first, which is the
// pair vdpbf16ps takes per lane. W [out, in] is read as it is stored: one word of a row is
// broadcast to all lanes. x is packed with tokens across the lanes, xp[block][k/2][32] for
// blocks of 32 tokens, so one step multiplies MR rows of W by 32 tokens in MR x 2 registers
// with no horizontal sums; the tile is the transpose of y's, and is transposed on the way out.
#include "misalign_kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define MR 12         // rows of W per tile: 24 accumulators + 2 x vectors + a broadcast
#define TOKENS 256    // tokens packed at a time (8 blocks of 32)
#define KC 512        // words of k per pass: an MR-row W tile of 12 x 2 KB stays in L1/L2

typedef uint32_t word2 __attribute__((aligned(2))); // a pair of bf16, 2-byte aligned in W

struct dot_job {
    float *y;
    size_t ldy;
    const word2 *w; // [out][in / 2] words
    const uint32_t *xp;
    size_t tokens, blocks, in2, out;
    int accumulate;
};

// The 12 rows of a tile, spelled out: with the accumulators in an array, clang -O2 (what
// SwiftPM builds C with) stored all 24 to the stack on every step and ran at half speed.
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define ROW_PTR(i) const word2 *w##i = j->w + (o + ((i) < valid ? (i) : valid - 1)) * j->in2;
#define ACC_DECL(i) __m512 c##i##a, c##i##b;
#define ACC_ZERO(i) c##i##a = _mm512_setzero_ps(); c##i##b = _mm512_setzero_ps();
#define ACC_LOAD(i) c##i##a = _mm512_load_ps(tile[b][i]); c##i##b = _mm512_load_ps(tile[b][i] + 16);
#define ACC_STEP(i)                                                                            \
    {                                                                                          \
        __m512bh wv = (__m512bh)_mm512_set1_epi32((int)w##i[k]);                               \
        c##i##a = _mm512_dpbf16_ps(c##i##a, wv, x0);                                           \
        c##i##b = _mm512_dpbf16_ps(c##i##b, wv, x1);                                           \
    }
#define ACC_SAVE(i) _mm512_store_ps(tile[b][i], c##i##a); _mm512_store_ps(tile[b][i] + 16, c##i##b);

// Tiles [first, last) of MR rows of W.
__attribute__((target("avx512f,avx512bf16")))
static void dot_tiles(const struct dot_job *j, size_t first, size_t last) {
    float tile[TOKENS / 32][MR][32] __attribute__((aligned(64)));
    for (size_t ti = first; ti < last; ti++) {
        size_t o = ti * MR, valid = j->out - o < MR ? j->out - o : MR;
        // Rows past `out` repeat the last row; their results are not stored.
        ROWS(ROW_PTR)
        for (size_t k0 = 0; k0 < j->in2; k0 += KC) {
            size_t k1 = k0 + KC < j->in2 ? k0 + KC : j->in2;
            for (size_t b = 0; b < j->blocks; b++) {
                const uint32_t *xb = j->xp + b * j->in2 * 32;
                ROWS(ACC_DECL)
                if (k0 == 0) {
                    ROWS(ACC_ZERO)
                } else {
                    ROWS(ACC_LOAD)
                }
                for (size_t k = k0; k < k1; k++) {
                    __m512bh x0 = (__m512bh)_mm512_load_si512(xb + k * 32);
                    __m512bh x1 = (__m512bh)_mm512_load_si512(xb + k * 32 + 16);
                    ROWS(ACC_STEP)
                }
                ROWS(ACC_SAVE)
            }
        }
        for (size_t b = 0; b < j->blocks; b++) {
            size_t tn = j->tokens - b * 32 < 32 ? j->tokens - b * 32 : 32;
            for (size_t tk = 0; tk < tn; tk++) {
                float *dst = j->y + (b * 32 + tk) * j->ldy + o;
                for (size_t i = 0; i < valid; i++) dst[i] = j->accumulate ? dst[i] + tile[b][i][tk] : tile[b][i][tk];
            }
        }
    }
}

// A group of products sharing the packed x: `base` with y, ldy, w and out set per product.
struct dot_group {
    struct dot_job base;
    const misalign_product *products;
    size_t count;
};

static void dot_rows(void *ctx, const misalign_product *pr, size_t o0, size_t o1) {
    struct dot_job j = ((const struct dot_group *)ctx)->base;
    j.y = pr->y;
    j.ldy = pr->ldy;
    j.w = (const word2 *)pr->w;
    j.out = pr->out;
    dot_tiles(&j, o0 / MR, (o1 + MR - 1) / MR);
}

// Task t takes the t-th of n equal shares of the tiles, counted across the group's products.
static void dot_task(void *ctx, size_t t, size_t n) {
    const struct dot_group *g = ctx;
    misalign_group_share(g->products, g->count, MR, t, n, dot_rows, ctx);
}

static int has_bf16_dot(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512bf16") ? 1 : 0;
    return cached;
}

int misalign_bf16_dot_available(void) { return has_bf16_dot(); }

int misalign_matmul_bf16_dot_group(const misalign_product *products, size_t count, const float *x, size_t ldx,
                                   size_t m, size_t in, int accumulate, size_t threads) {
    if (!has_bf16_dot() || in % 2 != 0) return 0;
    size_t in2 = in / 2;
    // The packed x, kept per calling thread and grown as needed (at most 256 tokens x in / 2
    // words: 2.5 MB for Qwen2.5-0.5B's down_proj, 9.7 MB for 7B's). Allocated per call, its
    // fresh pages were faulted in and zeroed by the kernel on every product.
    static __thread void *xp_buffer, *row_buffer;
    static __thread size_t xp_bytes, row_bytes;
    uint32_t *xp = misalign_thread_buffer(&xp_buffer, &xp_bytes, TOKENS * in2 * sizeof(uint32_t));
    uint16_t *row = misalign_thread_buffer(&row_buffer, &row_bytes, in * sizeof(uint16_t));
    if (!xp || !row) return 0;
    for (size_t t0 = 0; t0 < m; t0 += TOKENS) {
        size_t tokens = m - t0 < TOKENS ? m - t0 : TOKENS;
        size_t blocks = (tokens + 31) / 32;
        // Pack: round each token's row to bf16 (its words are then the pairs) and deal the
        // words out to the token's lane; lanes past the last token are zero.
        if (tokens % 32) memset(xp + (blocks - 1) * in2 * 32, 0, in2 * 32 * sizeof(uint32_t));
        for (size_t tk = 0; tk < tokens; tk++) {
            misalign_f32_to_bf16(row, x + (t0 + tk) * ldx, in);
            const uint32_t *words = (const uint32_t *)row;
            uint32_t *dst = xp + (tk / 32) * in2 * 32 + tk % 32;
            for (size_t k = 0; k < in2; k++) dst[k * 32] = words[k];
        }
        misalign_product chunk[count ? count : 1];
        misalign_products_from_row(chunk, products, count, t0);
        struct dot_group g = {{0, 0, 0, xp, tokens, blocks, in2, 0, accumulate}, chunk, count};
        misalign_parallel(threads, dot_task, &g); // one thread: runs on the caller
    }
    return 1;
}

#else
int misalign_bf16_dot_available(void) { return 0; }
int misalign_matmul_bf16_dot_group(const misalign_product *products, size_t count, const float *x, size_t ldx,
                                   size_t m, size_t in, int accumulate, size_t threads) {
    (void)products; (void)count; (void)x; (void)ldx; (void)m; (void)in; (void)accumulate; (void)threads;
    return 0;
}
#endif

// The single product: a group of one.
int misalign_matmul_bf16_dot(float *y, size_t ldy, const float *x, size_t ldx, const uint16_t *w, size_t m,
                             size_t in, size_t out, int accumulate, size_t threads) {
    misalign_product one = {w, out, y, ldy};
    return misalign_matmul_bf16_dot_group(&one, 1, x, ldx, m, in, accumulate, threads);
}
