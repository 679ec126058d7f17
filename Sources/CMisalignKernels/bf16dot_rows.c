// y = bf16(x) W^T for few rows of x (decoding: one row per live sample) on vdpbf16ps. The
// prefill kernel (bf16dot.c) puts 32 tokens across a register's lanes and so idles with fewer;
// here the lanes run along k instead, as in the direct f32 kernels (nn.c): one instruction
// multiplies 32 consecutive bf16 of a W row by the same 32 of an x row, pair by pair, into 16
// f32 lanes that are summed at the end of the row. W is used as stored, without widening to
// f32, and each instruction covers twice the k of an f32 FMA.
//
// x is rounded to bf16 once per product (nearest even, misalign_f32_to_bf16) into a buffer
// kept per calling thread, each row zero-padded to a multiple of 32, so x is loaded whole; the
// last chunk of a W row is loaded under a mask, which reads no byte past the row (the mask
// also suppresses faults past the end of a mapping) and so pairs zeros with zeros.
#include "misalign_kernels.h"

#include <stdlib.h>
#include <string.h>

#include "vec.h"

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

struct rows_job {
    float *y;
    size_t ldy;
    const uint16_t *xb; // [m, ldxb] bf16, zero-padded rows
    size_t ldxb;
    const uint16_t *w;
    size_t m, in;
    int accumulate;
};

// A group of products sharing x: `base` with y, ldy and w set per product.
struct group_job {
    struct rows_job base;
    const misalign_product *products;
    size_t count;
};

#define DP(acc, a, b) (acc) = _mm512_dpbf16_ps((acc), (__m512bh)(a), (__m512bh)(b))
#define LOADW(p) _mm512_loadu_si512((const void *)(p))
#define LOADWM(p) _mm512_maskz_loadu_epi16(tail, (const void *)(p))
#define LOADX(p) _mm512_load_si512((const void *)(p))

// The sum of 16 lanes, in HSUM16's order, in 512-bit operations only. HSUM16's 256- and
// 128-bit steps are VEX-encoded, which reach only registers 0-15; clang then kept every
// accumulator of a tile in those 16 and spilled the rest to the stack inside the k loop.
TARGET static inline __attribute__((always_inline)) float hsum(__m512 v) {
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E)); // lane i + lane i + 8
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1)); // + 4
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));       // + 2
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));       // + 1
    return _mm512_cvtss_f32(v);
}

#define STORE(dst, acc)                                                                        \
    do {                                                                                       \
        float t_ = hsum(acc);                                                                  \
        float *d_ = (dst);                                                                     \
        *d_ = j->accumulate ? *d_ + t_ : t_;                                                   \
    } while (0)

// One to four rows of x: bound by reading W, which is streamed row after row (one sequential
// stream the hardware prefetcher follows) with U independent sums per row of x.
#define ROWS_STREAM(MB, U)                                                                     \
    for (size_t o = o0; o < o1; o++) {                                                         \
        const uint16_t *wr = j->w + o * in;                                                    \
        __m512 acc[MB][U];                                                                     \
        for (int r = 0; r < MB; r++)                                                           \
            for (int u = 0; u < U; u++) acc[r][u] = _mm512_setzero_ps();                       \
        size_t k = 0;                                                                          \
        for (; k + 32 * U <= in; k += 32 * U)                                                  \
            for (int u = 0; u < U; u++) {                                                      \
                __m512i wv = LOADW(wr + k + 32 * u);                                           \
                for (int r = 0; r < MB; r++) DP(acc[r][u], wv, LOADX(xb + r * ldxb + k + 32 * u)); \
            }                                                                                  \
        for (; k + 32 <= in; k += 32) {                                                        \
            __m512i wv = LOADW(wr + k);                                                        \
            for (int r = 0; r < MB; r++) DP(acc[r][0], wv, LOADX(xb + r * ldxb + k));          \
        }                                                                                      \
        if (k < in) {                                                                          \
            __m512i wv = LOADWM(wr + k);                                                       \
            for (int r = 0; r < MB; r++) DP(acc[r][0], wv, LOADX(xb + r * ldxb + k));          \
        }                                                                                      \
        for (int r = 0; r < MB; r++) {                                                         \
            for (int u = 1; u < U; u++) acc[r][0] = _mm512_add_ps(acc[r][0], acc[r][u]);       \
            STORE(j->y + r * j->ldy + o, acc[r][0]);                                           \
        }                                                                                      \
    }

// Four rows of W against up to five rows of x in a register tile: per 32 values of k, 4 + 5
// loads for 20 instructions, so the dot-product units, not the loads, bound it; a tile of W is
// read from memory once and from L1 for every further group of x rows. The accumulators are
// named variables spelled out by the X-macros below, each tile size a function of its own, and
// the last chunk of k goes through the same loop under a mask: clang -O2 (what SwiftPM builds
// C with) kept a 4 x 6 tile, or one with a separate tail block, or one inlined beside the
// other kernels, partly on the stack, storing accumulators after every instruction. Rows of W
// past o1 (the last tile of a matrix whose row count is not a multiple of 4) repeat row
// o1 - 1 and are not stored.
#define B5(X) X(0) X(1) X(2) X(3) X(4)
#define B4(X) X(0) X(1) X(2) X(3)
#define B3(X) X(0) X(1) X(2)
#define B2(X) X(0) X(1)
#define B1(X) X(0)
#define T_DECL(b) __m512 a0##b = _mm512_setzero_ps(), a1##b = _mm512_setzero_ps(), \
                         a2##b = _mm512_setzero_ps(), a3##b = _mm512_setzero_ps();
#define T_STEP(b)                                                                              \
    {                                                                                          \
        __m512i xv = LOADX(xr + (b) * ldxb + k);                                               \
        DP(a0##b, w0, xv); DP(a1##b, w1, xv); DP(a2##b, w2, xv); DP(a3##b, w3, xv);            \
    }
#define T_SUM(b) { s[b][0] = hsum(a0##b); s[b][1] = hsum(a1##b); s[b][2] = hsum(a2##b); s[b][3] = hsum(a3##b); }
#define DEFINE_TILE(BL, MB)                                                                    \
    TARGET __attribute__((noinline)) static void tile_##BL(const struct rows_job *j, size_t o, size_t r, \
                                                           size_t valid, const uint16_t *p0, const uint16_t *p1, \
                                                           const uint16_t *p2, const uint16_t *p3, \
                                                           const uint16_t *next) {             \
        size_t in = j->in, ldxb = j->ldxb;                                                     \
        const uint16_t *xr = j->xb + r * ldxb;                                                 \
        BL(T_DECL)                                                                             \
        for (size_t k = 0; k < in; k += 32) {                                                  \
            __mmask32 mk = in - k >= 32 ? (__mmask32)~0u : (__mmask32)((1u << (in - k)) - 1);  \
            __m512i w0 = _mm512_maskz_loadu_epi16(mk, p0 + k), w1 = _mm512_maskz_loadu_epi16(mk, p1 + k); \
            __m512i w2 = _mm512_maskz_loadu_epi16(mk, p2 + k), w3 = _mm512_maskz_loadu_epi16(mk, p3 + k); \
            if (next)                                                                          \
                for (int i = 0; i < 4; i++) __builtin_prefetch(next + i * in + k);             \
            BL(T_STEP)                                                                         \
        }                                                                                      \
        float s[MB][4];                                                                        \
        BL(T_SUM)                                                                              \
        for (size_t b = 0; b < MB; b++) {                                                      \
            float *yr = j->y + (r + b) * j->ldy + o;                                           \
            for (size_t i = 0; i < valid; i++) yr[i] = j->accumulate ? yr[i] + s[b][i] : s[b][i]; \
        }                                                                                      \
    }
DEFINE_TILE(B5, 5)
DEFINE_TILE(B4, 4)
DEFINE_TILE(B3, 3)
DEFINE_TILE(B2, 2)
DEFINE_TILE(B1, 1)

TARGET static void rows_range(const struct rows_job *j, size_t o0, size_t o1) {
    const uint16_t *xb = j->xb;
    size_t ldxb = j->ldxb, in = j->in, m = j->m;
    __mmask32 tail = (__mmask32)((1ull << (in % 32)) - 1);
    switch (m) {
    case 1: { ROWS_STREAM(1, 4) return; }
    case 2: { ROWS_STREAM(2, 4) return; }
    case 3: { ROWS_STREAM(3, 2) return; }
    case 4: { ROWS_STREAM(4, 2) return; }
    default: break;
    }
    for (size_t o = o0; o < o1; o += 4) {
        size_t valid = o1 - o < 4 ? o1 - o : 4;
        const uint16_t *p0 = j->w + o * in;
        const uint16_t *p1 = valid > 1 ? p0 + in : p0;
        const uint16_t *p2 = valid > 2 ? p0 + 2 * in : p1;
        const uint16_t *p3 = valid > 3 ? p0 + 3 * in : p2;
        // The first tile of x rows reads this tile of W from memory, as four streams the
        // hardware prefetcher did not follow well (their loads took half the kernel's time at
        // 20 rows); it prefetches the next tile of this share meanwhile.
        const uint16_t *next = o + 4 < o1 ? p0 + 4 * in : 0;
        size_t r = 0;
        for (; r + 5 <= m; r += 5, next = 0) tile_B5(j, o, r, valid, p0, p1, p2, p3, next);
        switch (m - r) {
        case 4: tile_B4(j, o, r, valid, p0, p1, p2, p3, next); break;
        case 3: tile_B3(j, o, r, valid, p0, p1, p2, p3, next); break;
        case 2: tile_B2(j, o, r, valid, p0, p1, p2, p3, next); break;
        case 1: tile_B1(j, o, r, valid, p0, p1, p2, p3, next); break;
        default: break;
        }
    }
}

static void rows_of(void *ctx, const misalign_product *pr, size_t o0, size_t o1) {
    struct rows_job j = ((const struct group_job *)ctx)->base;
    j.y = pr->y;
    j.ldy = pr->ldy;
    j.w = pr->w;
    rows_range(&j, o0, o1);
}

// Task t takes the t-th of n equal shares of whole 16-row blocks of W, counted across the
// group's products.
static void rows_task(void *ctx, size_t t, size_t n) {
    const struct group_job *g = ctx;
    misalign_group_share(g->products, g->count, 16, t, n, rows_of, ctx);
}

int misalign_matmul_bf16_dot_rows_group(const misalign_product *products, size_t count, const float *x, size_t ldx,
                                        size_t m, size_t in, int accumulate, size_t threads) {
    if (m == 0) return 1;
    if (!misalign_bf16_dot_available() || in == 0) return 0;
    size_t ldxb = (in + 31) / 32 * 32;
    // The rounded x, kept per calling thread and grown as needed (32 rows of 7B's 18,944-wide
    // down_proj input: 1.2 MB), so a decoding step allocates nothing.
    static __thread void *xb_buffer;
    static __thread size_t xb_bytes;
    uint16_t *xb = misalign_thread_buffer(&xb_buffer, &xb_bytes, m * ldxb * sizeof(uint16_t));
    if (!xb) return 0;
    for (size_t r = 0; r < m; r++) {
        misalign_f32_to_bf16(xb + r * ldxb, x + r * ldx, in);
        memset(xb + r * ldxb + in, 0, (ldxb - in) * sizeof(uint16_t));
    }
    struct group_job g = {{0, 0, xb, ldxb, 0, m, in, accumulate}, products, count};
    misalign_parallel(threads, rows_task, &g); // one thread: runs on the caller
    return 1;
}

#else
int misalign_matmul_bf16_dot_rows_group(const misalign_product *products, size_t count, const float *x, size_t ldx,
                                        size_t m, size_t in, int accumulate, size_t threads) {
    (void)products; (void)count; (void)x; (void)ldx; (void)m; (void)in; (void)accumulate; (void)threads;
    return 0;
}
#endif

// The single product: a group of one.
int misalign_matmul_bf16_dot_rows(float *y, size_t ldy, const float *x, size_t ldx, const uint16_t *w, size_t m,
                                  size_t in, size_t out, int accumulate, size_t threads) {
    misalign_product one = {w, out, y, ldy};
    return misalign_matmul_bf16_dot_rows_group(&one, 1, x, ldx, m, in, accumulate, threads);
}
