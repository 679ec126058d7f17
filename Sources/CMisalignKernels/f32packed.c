// y = x W^T in f32 for many rows of x (prefill, training): our own tiled product in place of
// sgemm where the CPU has AVX-512. sgemm copies both operands into its panel layout on every
// call; here an f32 W is read as it is stored and only x, the small operand, is packed. A bf16
// W is widened to f32 12 rows x 512 values at a time, into a buffer on the stack that the
// tile then reuses for all its tokens (the widening is exact, so the products are those of
// the f32 weights holding the same values).
//
// Layout. x is packed with tokens across the lanes, xp[block][k][32] for blocks of 32 tokens
// (a 16 x 16 transpose at a time, in parallel). One step of the inner loop broadcasts W[o, k]
// for MR rows of W and multiplies each by the 32 tokens of x[., k] in two registers: MR x 2
// accumulators, no horizontal sums. The tile is the transpose of y's and is transposed back on
// the way out, again 16 x 16 in registers. Each y value is one chain of FMAs over k in order,
// so the result does not depend on the number of threads or on how the tiles are dealt out.
#include "misalign_kernels.h"

#include <stdatomic.h>
#include <string.h>

// Whether products may use the packed kernel (benchmarks turn it off to compare with sgemm).
// Atomic, so a benchmark flipping it while another thread multiplies is no data race.
static atomic_int packed_enabled = 1;
void misalign_set_f32_packed_enabled(int on) { atomic_store_explicit(&packed_enabled, on != 0, memory_order_relaxed); }
int misalign_f32_packed_enabled(void) { return atomic_load_explicit(&packed_enabled, memory_order_relaxed); }

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define MR 12        // rows of W per tile: 24 accumulators + 2 x vectors + a broadcast
#define TOKENS 256   // tokens packed at a time (8 blocks of 32)
#define KC 512       // values of k per pass: a tile's 12 rows x 2 KB of W stay near L1

// Transposes the 16 x 16 block r in place: r[j] becomes column j.
__attribute__((target("avx512f"), always_inline)) static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // s[4i + j], 128-bit lane L: rows 4i ... 4i + 3 of column 4L + j.
    __m512 s[16];
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        s[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        s[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        s[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        s[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // Gather lane L of s[j], s[4 + j], s[8 + j], s[12 + j]: column 4L + j.
    for (int j = 0; j < 4; j++) {
        __m512 p = _mm512_shuffle_f32x4(s[j], s[4 + j], 0x88), q = _mm512_shuffle_f32x4(s[j], s[4 + j], 0xDD);
        __m512 p2 = _mm512_shuffle_f32x4(s[8 + j], s[12 + j], 0x88), q2 = _mm512_shuffle_f32x4(s[8 + j], s[12 + j], 0xDD);
        r[j] = _mm512_shuffle_f32x4(p, p2, 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(p, p2, 0xDD);
        r[4 + j] = _mm512_shuffle_f32x4(q, q2, 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(q, q2, 0xDD);
    }
}

// Packing: task t of n packs its share of the 16-token groups of a chunk.
struct pack_job {
    const float *x;
    size_t ldx;
    float *xp;
    size_t tokens, groups, in;
};

__attribute__((target("avx512f"))) static void pack_task(void *ctx, size_t t, size_t n) {
    const struct pack_job *j = ctx;
    size_t lo, hi;
    misalign_share(j->groups, 1, t, n, &lo, &hi);
    for (size_t g = lo; g < hi; g++) {
        size_t first = g * 16, rows = j->tokens > first ? j->tokens - first : 0;
        if (rows > 16) rows = 16;
        float *dst = j->xp + (first / 32) * j->in * 32 + first % 32; // 64-byte aligned
        for (size_t k = 0; k < j->in; k += 16) {
            size_t width = j->in - k < 16 ? j->in - k : 16;
            __mmask16 m = (__mmask16)((1u << width) - 1);
            __m512 r[16];
            // Rows past the last token are zero, so the tile's spare lanes hold no NaNs.
            for (size_t i = 0; i < 16; i++)
                r[i] = i < rows ? _mm512_maskz_loadu_ps(m, j->x + (first + i) * j->ldx + k) : _mm512_setzero_ps();
            transpose16(r);
            for (size_t c = 0; c < width; c++) _mm512_store_ps(dst + (k + c) * 32, r[c]);
        }
    }
}

struct tile_job {
    float *y;
    size_t ldy;
    const void *w; // f32 or bf16 [out][in]
    int is_bf16;
    const float *xp;
    size_t tokens, blocks, in, out;
    int accumulate;
};

// The 12 rows of a tile, spelled out: with the accumulators in an array, clang -O2 (what
// SwiftPM builds C with) keeps them on the stack.
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
// Row i of the tile from k0 on (rows past `out` repeat the last row; their results are not
// stored): in W itself, or for bf16 in the widened block.
#define ROW_PTR(i)                                                                             \
    const float *w##i = j->is_bf16 ? wide[i]                                                   \
                                   : (const float *)j->w + (o + ((i) < valid ? (i) : valid - 1)) * j->in + k0;
#define ACC_DECL(i) __m512 c##i##a, c##i##b;
#define ACC_ZERO(i) c##i##a = _mm512_setzero_ps(); c##i##b = _mm512_setzero_ps();
#define ACC_LOAD(i) c##i##a = _mm512_load_ps(tile[b][i]); c##i##b = _mm512_load_ps(tile[b][i] + 16);
#define ACC_STEP(i)                                                                            \
    {                                                                                          \
        __m512 wv = _mm512_set1_ps(w##i[k]);                                                   \
        c##i##a = _mm512_fmadd_ps(wv, x0, c##i##a);                                            \
        c##i##b = _mm512_fmadd_ps(wv, x1, c##i##b);                                            \
    }
#define ACC_SAVE(i) _mm512_store_ps(tile[b][i], c##i##a); _mm512_store_ps(tile[b][i] + 16, c##i##b);

// Tiles [first, last) of MR rows of W, over every packed token.
__attribute__((target("avx512f"))) static void run_tiles(const struct tile_job *j, size_t first, size_t last) {
    float tile[TOKENS / 32][MR][32] __attribute__((aligned(64)));
    float wide[MR][KC] __attribute__((aligned(64)));
    for (size_t ti = first; ti < last; ti++) {
        size_t o = ti * MR, valid = j->out - o < MR ? j->out - o : MR;
        for (size_t k0 = 0; k0 < j->in; k0 += KC) {
            size_t k1 = k0 + KC < j->in ? k0 + KC : j->in;
            if (j->is_bf16) {
                for (size_t i = 0; i < MR; i++)
                    misalign_bf16_to_f32(wide[i], (const uint16_t *)j->w + (o + (i < valid ? i : valid - 1)) * j->in + k0, k1 - k0);
            }
            ROWS(ROW_PTR)
            for (size_t b = 0; b < j->blocks; b++) {
                const float *xb = j->xp + (b * j->in + k0) * 32;
                ROWS(ACC_DECL)
                if (k0 == 0) {
                    ROWS(ACC_ZERO)
                } else {
                    ROWS(ACC_LOAD)
                }
                for (size_t k = 0; k < k1 - k0; k++) {
                    __m512 x0 = _mm512_load_ps(xb + k * 32);
                    __m512 x1 = _mm512_load_ps(xb + k * 32 + 16);
                    ROWS(ACC_STEP)
                }
                ROWS(ACC_SAVE)
            }
        }
        // Out: 16 tokens at a time, the tile's 12 rows (and 4 zero rows) turned into 16
        // vectors, one per token, whose first `valid` lanes go to y[token, o ...].
        __mmask16 m = (__mmask16)((1u << valid) - 1);
        for (size_t b = 0; b < j->blocks; b++) {
            for (size_t h = 0; h < 2; h++) {
                size_t t0 = b * 32 + h * 16;
                if (t0 >= j->tokens) break;
                size_t tn = j->tokens - t0 < 16 ? j->tokens - t0 : 16;
                __m512 r[16];
                for (size_t i = 0; i < 16; i++) r[i] = i < MR ? _mm512_load_ps(tile[b][i] + h * 16) : _mm512_setzero_ps();
                transpose16(r);
                for (size_t tk = 0; tk < tn; tk++) {
                    float *dst = j->y + (t0 + tk) * j->ldy + o;
                    __m512 v = j->accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst), r[tk]) : r[tk];
                    _mm512_mask_storeu_ps(dst, m, v);
                }
            }
        }
    }
}

// A group of products sharing the packed x: `base` with y, ldy, w and out set per product.
struct tile_group {
    struct tile_job base;
    const misalign_product *products;
    size_t count;
};

static void group_rows(void *ctx, const misalign_product *pr, size_t o0, size_t o1) {
    struct tile_job j = ((const struct tile_group *)ctx)->base;
    j.y = pr->y;
    j.ldy = pr->ldy;
    j.w = pr->w;
    j.out = pr->out;
    run_tiles(&j, o0 / MR, (o1 + MR - 1) / MR);
}

// Task t takes the t-th of n equal shares of the tiles, counted across the group's products.
static void tile_task(void *ctx, size_t t, size_t n) {
    const struct tile_group *g = ctx;
    misalign_group_share(g->products, g->count, MR, t, n, group_rows, ctx);
}

static int has_avx512(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    return cached;
}

int misalign_f32_packed_available(void) { return has_avx512(); }

int misalign_matmul_packed_group(int is_bf16, const misalign_product *products, size_t count, const float *x, size_t ldx,
                                 size_t m, size_t in, int accumulate, size_t threads) {
    if (!has_avx512() || in == 0) return 0;
    // The packed x, kept per calling thread and grown as needed (256 tokens x in floats: 0.9 MB
    // for Qwen2.5-0.5B's x of 896, 4.9 MB for its down_proj input of 4864).
    static __thread void *xp_buffer;
    static __thread size_t xp_bytes;
    float *xp = misalign_thread_buffer(&xp_buffer, &xp_bytes, TOKENS * in * sizeof(float));
    if (!xp) return 0;
    for (size_t t0 = 0; t0 < m; t0 += TOKENS) {
        size_t tokens = m - t0 < TOKENS ? m - t0 : TOKENS;
        size_t blocks = (tokens + 31) / 32;
        struct pack_job pj = {x + t0 * ldx, ldx, xp, tokens, blocks * 2, in};
        misalign_parallel(threads, pack_task, &pj);
        misalign_product chunk[count ? count : 1];
        misalign_products_from_row(chunk, products, count, t0);
        struct tile_group g = {{0, 0, 0, is_bf16, xp, tokens, blocks, in, 0, accumulate}, chunk, count};
        misalign_parallel(threads, tile_task, &g); // one thread: runs on the caller
    }
    return 1;
}

#else
int misalign_f32_packed_available(void) { return 0; }
int misalign_matmul_packed_group(int is_bf16, const misalign_product *products, size_t count, const float *x, size_t ldx,
                                 size_t m, size_t in, int accumulate, size_t threads) {
    (void)is_bf16; (void)products; (void)count; (void)x; (void)ldx; (void)m; (void)in; (void)accumulate; (void)threads;
    return 0;
}
#endif

// The single product: a group of one.
int misalign_matmul_packed(int is_bf16, float *y, size_t ldy, const float *x, size_t ldx, const void *w, size_t m,
                           size_t in, size_t out, int accumulate, size_t threads) {
    misalign_product one = {w, out, y, ldy};
    return misalign_matmul_packed_group(is_bf16, &one, 1, x, ldx, m, in, accumulate, threads);
}
