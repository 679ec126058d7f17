// A small fork-join pool for the decode-time kernels. A decoding step runs some 170 short
// products (24 layers x 7 projections + the head), each split over the cores; woken through
// a futex each time (libdispatch's concurrentPerform), the helper thread started late enough
// that a bf16 step streamed its weights at 19-24 GB/s where the same products on threads that
// wait spinning streamed 25-35 GB/s. So the workers here spin on a generation counter for a
// short while after each job (SPIN_NS) and only then sleep on a condition variable.
#include "misalign_kernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_WORKERS 63
#define SPIN_NS 200000       // how long an idle worker spins before it sleeps
#define YIELD_AFTER_NS 50000 // and from when it yields while spinning

static pthread_mutex_t pool_busy = PTHREAD_MUTEX_INITIALIZER;  // one job at a time
static pthread_mutex_t sleep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cv = PTHREAD_COND_INITIALIZER;
static atomic_int sleepers;
static atomic_size_t remaining;
static size_t workers; // started so far; only changed while pool_busy is held
// The job. Written by the poster before it signals the workers that take part, and not
// written again until all of them have finished, so a worker reads it without a lock.
static misalign_task_fn job_fn;
static void *job_ctx;
static size_t job_n;
// Worker w runs task w + 1 of a job when its own counter moves; a worker a job does not need
// is not signalled at all. One cache line each, so spinning workers do not share a line.
static struct { atomic_ulong posted; char pad[64 - sizeof(atomic_ulong)]; } slots[MAX_WORKERS];

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Waits until worker w's counter differs from `seen` and returns the new value: spinning
// first, then asleep. The sleeper count is raised under the mutex before the last check, so a
// poster that then sees no sleepers knows the worker will still see its new counter.
static unsigned long wait_for_job(size_t w, unsigned long seen) {
    uint64_t start = now_ns();
    for (unsigned i = 1;; i++) {
        unsigned long g = atomic_load_explicit(&slots[w].posted, memory_order_acquire);
        if (g != seen) return g;
        CPU_RELAX();
        // After the first YIELD_AFTER_NS (longer than the usual gap between two products of a
        // decoding step), give way to any other runnable thread every few microseconds: with
        // more threads than cores, a pure spin holds a core a job's own threads may need.
        if ((i & 255) == 0) {
            uint64_t waited = now_ns() - start;
            if (waited > SPIN_NS) break;
            if (waited > YIELD_AFTER_NS) sched_yield();
        }
    }
    pthread_mutex_lock(&sleep_mu);
    atomic_fetch_add(&sleepers, 1);
    unsigned long g;
    while ((g = atomic_load(&slots[w].posted)) == seen) pthread_cond_wait(&sleep_cv, &sleep_mu);
    atomic_fetch_sub(&sleepers, 1);
    pthread_mutex_unlock(&sleep_mu);
    return g;
}

static void *worker_main(void *arg) {
    size_t w = (size_t)arg;
    unsigned long seen = 0;
    for (;;) {
        seen = wait_for_job(w, seen);
        job_fn(job_ctx, w + 1, job_n);
        atomic_fetch_sub_explicit(&remaining, 1, memory_order_release);
    }
    return 0;
}

void misalign_parallel(size_t n, misalign_task_fn fn, void *ctx) {
    if (n > MAX_WORKERS + 1) n = MAX_WORKERS + 1;
    // One job at a time: a second caller (another model in the same process, tests running
    // side by side) runs its tasks itself rather than queueing or oversubscribing the cores.
    if (n <= 1 || pthread_mutex_trylock(&pool_busy) != 0) {
        for (size_t t = 0; t < n; t++) fn(ctx, t, n);
        return;
    }
    while (workers < n - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&th, &attr, worker_main, (void *)workers);
        pthread_attr_destroy(&attr);
        if (failed) break;
        workers++;
    }
    size_t helpers = workers < n - 1 ? workers : n - 1;
    job_fn = fn;
    job_ctx = ctx;
    job_n = helpers + 1;
    atomic_store_explicit(&remaining, helpers, memory_order_relaxed);
    for (size_t w = 0; w < helpers; w++) atomic_fetch_add(&slots[w].posted, 1);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_mu);
        pthread_cond_broadcast(&sleep_cv);
        pthread_mutex_unlock(&sleep_mu);
    }
    fn(ctx, 0, job_n);
    // Tasks are equal shares, so the wait is short unless a worker was preempted; then yield.
    for (unsigned i = 1; atomic_load_explicit(&remaining, memory_order_acquire) != 0; i++) {
        if (i < 4096) CPU_RELAX(); else sched_yield();
    }
    pthread_mutex_unlock(&pool_busy);
}

void *misalign_thread_buffer(void **buffer, size_t *capacity, size_t bytes) {
    if (*buffer && *capacity >= bytes) return *buffer;
    free(*buffer);
    *buffer = aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64); // a size aligned_alloc takes
    *capacity = *buffer ? bytes : 0;
    return *buffer;
}

void misalign_group_share(const misalign_product *products, size_t count, size_t block, size_t t, size_t n,
                          misalign_rows_fn fn, void *ctx) {
    size_t blocks = 0;
    for (size_t p = 0; p < count; p++) blocks += (products[p].out + block - 1) / block;
    size_t lo, hi;
    misalign_share(blocks, 1, t, n, &lo, &hi);
    for (size_t p = 0, first = 0; p < count && first < hi; p++) {
        size_t own = (products[p].out + block - 1) / block; // blocks first ..< first + own
        size_t a = lo > first ? lo - first : 0, b = hi - first < own ? hi - first : own;
        if (a < b) fn(ctx, &products[p], a * block, b * block < products[p].out ? b * block : products[p].out);
        first += own;
    }
}

struct matmul_job {
    int is_bf16;
    const misalign_product *products;
    size_t count;
    const float *x;
    size_t ldx, m, in;
    int accumulate;
};

static void matmul_rows(void *ctx, const misalign_product *pr, size_t o0, size_t o1) {
    const struct matmul_job *j = ctx;
    if (j->is_bf16)
        misalign_matmul_bf16_t(pr->y, pr->ldy, j->x, j->ldx, pr->w, j->m, j->in, o0, o1, j->accumulate);
    else
        misalign_matmul_f32_t(pr->y, pr->ldy, j->x, j->ldx, pr->w, j->m, j->in, o0, o1, j->accumulate);
}

// Task t takes the t-th of n equal shares of whole 16-row blocks, counted across the group's
// products, so every share but the last of each product keeps the 4-row tiles. (Chunks taken
// from a shared counter, about 8 a thread, measured the same with one row of x and 4% slower
// with 20.)
static void matmul_task(void *ctx, size_t t, size_t n) {
    const struct matmul_job *j = ctx;
    misalign_group_share(j->products, j->count, 16, t, n, matmul_rows, ctx);
}

void misalign_matmul_group_t(int is_bf16, const misalign_product *products, size_t count, const float *x, size_t ldx,
                             size_t m, size_t in, int accumulate, size_t threads) {
    struct matmul_job j = {is_bf16, products, count, x, ldx, m, in, accumulate};
    misalign_parallel(threads, matmul_task, &j); // one thread: runs on the caller
}

void misalign_matmul_parallel_t(int is_bf16, float *y, size_t ldy, const float *x, size_t ldx, const void *w,
                                size_t m, size_t in, size_t out, int accumulate, size_t threads) {
    misalign_product one = {w, out, y, ldy};
    misalign_matmul_group_t(is_bf16, &one, 1, x, ldx, m, in, accumulate, threads);
}
