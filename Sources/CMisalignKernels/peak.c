// The machine's f32 FMA rate, the yardstick no product can pass: every thread of the pool runs
// 12 independent chains of vector FMAs (enough to cover the FMA latency on both pipes) from
// registers, with no memory traffic. Benchmarks print their GFLOP/s beside it.
#include "misalign_kernels.h"

#include <time.h>

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

#define DECL512(i) __m512 a##i = _mm512_set1_ps(1.0f + (i) * 1e-3f);
#define STEP512(i) a##i = _mm512_fmadd_ps(a##i, x, y);
#define SUM512(i) s = _mm512_add_ps(s, a##i);
__attribute__((target("avx512f"))) static float chains512(uint64_t iterations) {
    __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f), s = _mm512_setzero_ps();
    CHAINS(DECL512)
    for (uint64_t i = 0; i < iterations; i++) { CHAINS(STEP512) }
    CHAINS(SUM512)
    return _mm512_reduce_add_ps(s);
}

#define DECL256(i) __m256 a##i = _mm256_set1_ps(1.0f + (i) * 1e-3f);
#define STEP256(i) a##i = _mm256_fmadd_ps(a##i, x, y);
#define SUM256(i) s = _mm256_add_ps(s, a##i);
__attribute__((target("avx2,fma"))) static float chains256(uint64_t iterations) {
    __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f), s = _mm256_setzero_ps();
    CHAINS(DECL256)
    for (uint64_t i = 0; i < iterations; i++) { CHAINS(STEP256) }
    CHAINS(SUM256)
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}
static int lanes(void) {
    return __builtin_cpu_supports("avx512f") ? 16 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8 : 0;
}
static float chains(uint64_t iterations) { return lanes() == 16 ? chains512(iterations) : chains256(iterations); }
#else
static int lanes(void) { return 0; }
static float chains(uint64_t iterations) { (void)iterations; return 0; }
#endif

struct peak_job {
    uint64_t iterations;
    volatile float sink[64];
};

static void peak_task(void *ctx, size_t t, size_t n) {
    struct peak_job *j = ctx;
    (void)n;
    j->sink[t % 64] = chains(j->iterations);
}

static double timed_run(struct peak_job *j, size_t threads) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    misalign_parallel(threads, peak_task, j);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
}

double misalign_fma_peak_gflops(size_t threads, double seconds) {
    if (lanes() == 0 || threads == 0) return 0;
    struct peak_job j = {1u << 12, {0}};
    // Lengthen the loop until one run takes a tenth of the time asked; the best of ten runs.
    double dt;
    while ((dt = timed_run(&j, threads)) < seconds / 10 && j.iterations < (1ull << 40)) j.iterations *= 2;
    for (int r = 1; r < 10; r++) {
        double again = timed_run(&j, threads);
        if (again < dt) dt = again;
    }
    return (double)threads * (double)j.iterations * 12.0 * 2.0 * lanes() / dt / 1e9;
}
