// The machine's f32 FMA rate, the yardstick no product can pass: every thread of the pool runs
// 12 independent chains of vector FMAs (enough to cover the FMA latency on both pipes) from
// registers, with no memory traffic. Benchmarks print their GFLOP/s beside it.
#include "misalign_kernels.h"

#include <time.h>

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

// One function per vector width, from one loop: the type and intrinsics travel as arguments.
#define CHAINS(X, ...) X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__) X(3, __VA_ARGS__) \
    X(4, __VA_ARGS__) X(5, __VA_ARGS__) X(6, __VA_ARGS__) X(7, __VA_ARGS__) X(8, __VA_ARGS__)  \
    X(9, __VA_ARGS__) X(10, __VA_ARGS__) X(11, __VA_ARGS__)
#define DECL(i, V, SET1, FMA, ADD) V a##i = SET1(1.0f + (i) * 1e-3f);
#define STEP(i, V, SET1, FMA, ADD) a##i = FMA(a##i, x, y);
#define SUM(i, V, SET1, FMA, ADD) s = ADD(s, a##i);
#define CHAIN_FN(name, isa, V, SET1, FMA, ADD, FIRST)                                          \
    __attribute__((target(isa))) static float name(uint64_t iterations) {                     \
        V x = SET1(0.999999f), y = SET1(1e-7f), s = SET1(0.0f);                                \
        CHAINS(DECL, V, SET1, FMA, ADD)                                                        \
        for (uint64_t i = 0; i < iterations; i++) { CHAINS(STEP, V, SET1, FMA, ADD) }          \
        CHAINS(SUM, V, SET1, FMA, ADD)                                                         \
        return FIRST(s);                                                                       \
    }
CHAIN_FN(chains512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_reduce_add_ps)
CHAIN_FN(chains256, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_cvtss_f32)

// vdpbf16ps: two bf16 products per f32 lane, from registers.
#define DOT_DECL(i) __m512 a##i = _mm512_set1_ps(1.0f + (i) * 1e-3f);
#define DOT_STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
#define DOT_SUM(i) s = _mm512_add_ps(s, a##i);
#define DOT_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
__attribute__((target("avx512f,avx512bf16"))) static float dot_chains(uint64_t iterations) {
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    __m512 s = _mm512_setzero_ps();
    DOT_CHAINS(DOT_DECL)
    for (uint64_t i = 0; i < iterations; i++) { DOT_CHAINS(DOT_STEP) }
    DOT_CHAINS(DOT_SUM)
    return _mm512_reduce_add_ps(s);
}
static int has_dot(void) { return __builtin_cpu_supports("avx512bf16"); }

static int lanes(void) {
    return __builtin_cpu_supports("avx512f") ? 16 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8 : 0;
}
static float chains(uint64_t iterations) { return lanes() == 16 ? chains512(iterations) : chains256(iterations); }
#else
static int lanes(void) { return 0; }
static float chains(uint64_t iterations) { (void)iterations; return 0; }
static int has_dot(void) { return 0; }
static float dot_chains(uint64_t iterations) { (void)iterations; return 0; }
#endif

struct peak_job {
    uint64_t iterations;
    int dot;
    volatile float sink[64];
};

static void peak_task(void *ctx, size_t t, size_t n) {
    struct peak_job *j = ctx;
    (void)n;
    j->sink[t % 64] = j->dot ? dot_chains(j->iterations) : chains(j->iterations);
}

static double timed_run(struct peak_job *j, size_t threads) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    misalign_parallel(threads, peak_task, j);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
}

// Seconds of the best of ten runs of `j` (its loop lengthened until one run takes a tenth of
// `seconds`).
static double best_run(struct peak_job *j, size_t threads, double seconds) {
    double dt;
    while ((dt = timed_run(j, threads)) < seconds / 10 && j->iterations < (1ull << 40)) j->iterations *= 2;
    for (int r = 1; r < 10; r++) {
        double again = timed_run(j, threads);
        if (again < dt) dt = again;
    }
    return dt;
}

double misalign_bf16_dot_peak_gflops(size_t threads, double seconds) {
    if (!has_dot() || threads == 0) return 0;
    if (threads > 64) threads = 64;
    struct peak_job j = {1u << 12, 1, {0}};
    double dt = best_run(&j, threads, seconds);
    return (double)threads * (double)j.iterations * 12.0 * 4.0 * 16.0 / dt / 1e9;
}

double misalign_fma_peak_gflops(size_t threads, double seconds) {
    if (lanes() == 0 || threads == 0) return 0;
    if (threads > 64) threads = 64; // misalign_parallel's most
    struct peak_job j = {1u << 12, 0, {0}};
    double dt = best_run(&j, threads, seconds);
    return (double)threads * (double)j.iterations * 12.0 * 2.0 * lanes() / dt / 1e9;
}
