#ifndef MISALIGN_KERNELS_H
#define MISALIGN_KERNELS_H
#include <stddef.h>
#include <stdint.h>

// Element-wise precision conversions. Each is compiled for AVX-512, AVX2 and baseline
// x86-64 and picked at load time (target_clones), so the package builds without
// -march flags yet runs wide on the CPUs that have it.

/// bf16 -> f32, exact (a bf16 is the top half of an f32). out[n], in[n].
void misalign_bf16_to_f32(float *out, const uint16_t *in, size_t n);
/// f32 -> bf16, round to nearest even; NaN stays NaN (quiet, sign and top payload kept),
/// Inf stays Inf, finite values above the bf16 range round to Inf as IEEE says.
void misalign_f32_to_bf16(uint16_t *out, const float *in, size_t n);
/// out[i] = in[i] rounded to the nearest bf16 (ties to even) and kept as f32: the same value as
/// misalign_f32_to_bf16 then misalign_bf16_to_f32. out may equal in.
void misalign_round_to_bf16(float *out, const float *in, size_t n);
/// f16 (IEEE binary16) -> f32, exact, subnormals included.
void misalign_f16_to_f32(float *out, const uint16_t *in, size_t n);
/// f32 -> f16, round to nearest even, subnormals produced, overflow to Inf, NaN kept NaN.
void misalign_f32_to_f16(uint16_t *out, const float *in, size_t n);

/// Name of the widest instruction set this CPU offers among those the kernels target.
const char *misalign_kernels_isa(void);
#endif

#ifndef MISALIGN_NN_DECLS
#define MISALIGN_NN_DECLS
// Neural-network kernels over raw float arrays, row-major. Shapes are in the comments.

/// RMSNorm as Qwen2 computes it: out[r, c] = w[c] * x[r, c] / sqrt(mean_c(x[r, c]^2) + eps).
/// The mean is accumulated in double. out may equal x. x, out: [rows, cols]; w: [cols].
void misalign_rmsnorm(float *out, const float *x, const float *w, float eps, size_t rows, size_t cols);

/// out[i] = silu(gate[i]) * up[i] with silu(g) = g / (1 + exp(-g)). out may alias gate or up.
void misalign_silu_mul(float *out, const float *gate, const float *up, size_t n);
/// The same on `threads` threads of misalign_parallel (from 65,536 elements; one below).
void misalign_silu_mul_threads(float *out, const float *gate, const float *up, size_t n, size_t threads);

/// out[i] += a[i].
void misalign_add_inplace(float *out, const float *a, size_t n);

/// out[r, c] += bias[c]. out: [rows, cols].
void misalign_add_bias(float *out, const float *bias, size_t rows, size_t cols);

/// out[i] = scale * a[i] + out[i].
void misalign_axpy(float *out, const float *a, float scale, size_t n);

/// Rotary embedding, half-split (NeoX / Hugging Face Qwen2) layout, in place, for one token:
/// for each head, (x[i], x[i + d/2]) -> (x[i] cos[i] - x[i + d/2] sin[i], x[i + d/2] cos[i] + x[i] sin[i]).
/// x: [heads, head_dim] with heads spaced `head_stride` floats apart; cos, sin: [head_dim / 2].
void misalign_rope(float *x, size_t heads, size_t head_stride, size_t head_dim, const float *cos, const float *sin);

/// Softmax of each row in place, the first `valid` entries of a row of stride `stride`;
/// entries valid..<n are set to 0 (masked). x: [rows, stride].
void misalign_softmax_rows(float *x, size_t rows, size_t stride, const size_t *valid);

/// Widens rows of a 16-bit weight matrix into f32: out[r, c] = w[r, c] for r < rows.
/// `is_bf16` picks bf16 or IEEE f16.
void misalign_widen_rows(float *out, const uint16_t *w, size_t rows, size_t cols, int is_bf16);

/// y[m, o] (+)= sum_k x[m, k] * W[o, k] for output rows o in [o0, o1), W stored [out, in] as
/// bf16 (`_bf16`) or f32 (`_f32`): the decode-time product. Up to 4 rows of x, W is streamed
/// row after row (bound by memory); from 5 rows on, 4 rows of W meet 6 rows of x in a register
/// tile (bound by FMAs), each tile of W read from memory once. No packing, unlike sgemm, which
/// copies W on every call. x: [m, in] (row stride ldx), y: [m, out] (row stride ldy).
/// accumulate=0 overwrites y. Disjoint [o0, o1) ranges may run on different threads.
void misalign_matmul_bf16_t(float *y, size_t ldy, const float *x, size_t ldx, const uint16_t *w,
                            size_t m, size_t in, size_t o0, size_t o1, int accumulate);
void misalign_matmul_f32_t(float *y, size_t ldy, const float *x, size_t ldx, const float *w,
                           size_t m, size_t in, size_t o0, size_t o1, int accumulate);
#endif

#ifndef MISALIGN_NN_BACKWARD_DECLS
#define MISALIGN_NN_BACKWARD_DECLS
// Backward kernels for training (nn_backward.c). Each accumulates (+=) into its input-gradient
// buffers, llm.c style, so a tensor feeding several consumers sums their gradients for free.

/// RMSNorm backward. With r = 1/sqrt(mean(x^2) + eps) recomputed from x as the forward does it:
/// dx[r, c] += r * w[c] dy[r, c] - x[r, c] r^3 / cols * sum_c(w[c] dy[r, c] x[r, c]).
/// The weight is frozen, so there is no dw. dx, dy, x: [rows, cols]; w: [cols].
void misalign_rmsnorm_backward(float *dx, const float *dy, const float *x, const float *w, float eps,
                               size_t rows, size_t cols);

/// Backward of out = silu(gate) * up: dgate[i] = dout[i] up[i] s (1 + g (1 - s)) with s = sigmoid(g),
/// dup[i] = dout[i] silu(g). Overwrites dgate and dup (they are the only consumers). All [n].
void misalign_silu_mul_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n);

/// RoPE backward in place: the forward is a rotation by +angle, so the gradient is rotated by -angle.
/// Same layout as misalign_rope. dx: [heads, head_dim] spaced head_stride apart; cos, sin: [head_dim / 2].
void misalign_rope_backward(float *dx, size_t heads, size_t head_stride, size_t head_dim, const float *cos, const float *sin);

/// Softmax backward in place: dp[r, i] <- p[r, i] (dp[r, i] - sum_j p[r, j] dp[r, j]) over the
/// first n columns of each row (p is 0 on masked entries, so they get 0). p, dp: [rows, stride].
void misalign_softmax_backward_rows(float *dp, const float *p, size_t rows, size_t stride, size_t n);

/// Cross-entropy forward and backward in one pass, in place: for each row r with target t[r],
/// loss[r] = logsumexp(z[r]) - z[r, t[r]] (in double), then z[r] <- scale * (softmax(z[r]) - onehot(t[r])).
/// z: [rows, vocab]; targets, loss: [rows].
void misalign_cross_entropy_backward(float *z, const int32_t *targets, double *loss, float scale,
                                     size_t rows, size_t vocab);
/// The same with its rows split over `threads` threads of misalign_parallel (same results).
void misalign_cross_entropy_backward_threads(float *z, const int32_t *targets, double *loss, float scale, size_t rows,
                                             size_t vocab, size_t threads);
/// misalign_silu_mul_backward on `threads` threads of misalign_parallel (from 65,536 elements;
/// same results).
void misalign_silu_mul_backward_threads(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n,
                                        size_t threads);

// Gemma 2 (gemma.c).
/// out[i] = gelu_tanh(gate[i]) * up[i], gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
/// as PyTorch computes `gelu(approximate="tanh")` in f32; on `threads` threads of
/// misalign_parallel from 65,536 elements. out may alias gate or up.
void misalign_gelu_tanh_mul_threads(float *out, const float *gate, const float *up, size_t n, size_t threads);
/// Its backward: dgate[i] = dout[i] up[i] gelu_tanh'(gate[i]), dup[i] = dout[i] gelu_tanh(gate[i]),
/// with PyTorch's formula for the derivative. Overwrites dgate and dup.
void misalign_gelu_tanh_mul_backward_threads(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                                             size_t n, size_t threads);
/// Soft-capping in place: x[i] = tanh(x[i] / cap) * cap.
void misalign_softcap(float *x, size_t n, float cap);
/// Its backward: d[i] *= 1 - tanh(raw[i] / cap)^2, raw being the values before capping.
void misalign_softcap_backward(float *d, const float *raw, size_t n, float cap);
/// Causal softmax of a [rows, stride] block of one sequence's scores (row r is position r)
/// over the keys it sees: r - window < j <= r (all j <= r when window is 0); other entries
/// are set to 0. Sums in double, as misalign_softmax_rows.
void misalign_softmax_window_rows(float *x, size_t rows, size_t stride, size_t window);
#endif

#ifndef MISALIGN_LOG_SUM_EXP_DECLS
#define MISALIGN_LOG_SUM_EXP_DECLS
/// log(sum_i exp(z[i])) over one row of n logits: the max in f32, exp(z[i] - max) (the difference
/// in f32) and the sum in f64, over 16 lanes. -inf for n = 0 or an all -inf row; +inf if a logit
/// is +inf; NaN if one is NaN.
double misalign_log_sum_exp(const float *z, size_t n);
#endif

#ifndef MISALIGN_DROPOUT_DECLS
#define MISALIGN_DROPOUT_DECLS
/// Inverted dropout with a counter-based mask: out[r, c] = x[r, c] / (1 - p) when
/// u(seed, r * cols + c) >= p, else 0, where u is a SplitMix64 hash of the element's index mapped
/// to [0, 1). The mask depends only on (seed, index), so the backward pass (and a recomputed
/// forward) regenerate it instead of storing it. x has row stride ldx; out: [rows, cols]; out may equal x.
void misalign_dropout(float *out, const float *x, size_t rows, size_t cols, size_t ldx, float p, uint64_t seed);
#endif

#ifndef MISALIGN_POOL_DECLS
#define MISALIGN_POOL_DECLS
/// A task of a fork-join job: task t of n.
typedef void (*misalign_task_fn)(void *ctx, size_t t, size_t n);

/// Task t's share [*lo, *hi) of `count` items cut into n nearly equal runs of whole `block`s
/// (the last run ends at `count`); empty when there are fewer blocks than tasks.
static inline void misalign_share(size_t count, size_t block, size_t t, size_t n, size_t *lo, size_t *hi) {
    size_t blocks = (count + block - 1) / block;
    *lo = blocks * t / n * block;
    *hi = blocks * (t + 1) / n * block;
    if (*hi > count) *hi = count;
    if (*lo > *hi) *lo = *hi;
}

/// Runs fn(ctx, t, n) for t in 0..<n and returns when all have finished: task 0 on the calling
/// thread, the others on persistent worker threads that spin for up to 0.2 ms after a job
/// before they sleep (pool.c says why). One job runs at a time; a caller that finds the pool
/// busy runs all n tasks itself, in order.
void misalign_parallel(size_t n, misalign_task_fn fn, void *ctx);

/// Grows a buffer the caller keeps per thread (its own `static __thread` pointer and capacity)
/// to hold at least `bytes`, 64-byte aligned, and returns it; kept as it is when large enough,
/// so a kernel called every step allocates (and page-faults) only the first time. NULL when
/// memory runs out (the old buffer is freed and the capacity set to 0).
void *misalign_thread_buffer(void **buffer, size_t *capacity, size_t bytes);

/// misalign_matmul_{bf16,f32}_t over all `out` rows of W, split into `threads` equal shares of
/// whole 16-row blocks run by misalign_parallel.
void misalign_matmul_parallel_t(int is_bf16, float *y, size_t ldy, const float *x, size_t ldx, const void *w,
                                size_t m, size_t in, size_t out, int accumulate, size_t threads);

/// One product of a group that shares its input x: y[m, out] (+)= x W^T, W [out, in] (f32 or
/// bf16 as the group says), y with row stride ldy.
typedef struct {
    const void *w;
    size_t out;
    float *y;
    size_t ldy;
} misalign_product;

/// The products of a group for a later run of x's rows: dst[p] is src[p] with y moved down
/// `row` rows (the kernels that take x 256 tokens at a time).
static inline void misalign_products_from_row(misalign_product *dst, const misalign_product *src, size_t count, size_t row) {
    for (size_t p = 0; p < count; p++) {
        dst[p] = src[p];
        dst[p].y = src[p].y + row * src[p].ldy;
    }
}

/// Called for the rows [o0, o1) of one product of a group that fall in a task's share.
typedef void (*misalign_rows_fn)(void *ctx, const misalign_product *product, size_t o0, size_t o1);

/// Task t's share (of n) of a group's rows: the products' rows cut into `block`-row blocks,
/// counted as one list (the last block of each product may be short), dealt out as
/// misalign_share deals whole blocks; fn is called once for each product the share reaches.
void misalign_group_share(const misalign_product *products, size_t count, size_t block, size_t t, size_t n,
                          misalign_rows_fn fn, void *ctx);

/// Every product of a group in one job (the q, k and v projections of a layer; gate and up):
/// their rows of W are dealt out as one list, so the small ones do not each pay for a split of
/// their own, and the threads meet once. Each row's result is the one misalign_matmul_parallel_t
/// gives for its own product.
void misalign_matmul_group_t(int is_bf16, const misalign_product *products, size_t count, const float *x, size_t ldx,
                             size_t m, size_t in, int accumulate, size_t threads);
#endif

#ifndef MISALIGN_BF16_DOT_DECLS
#define MISALIGN_BF16_DOT_DECLS
/// 1 if this CPU has the bf16 dot-product instruction (AVX512_BF16) the kernel below needs.
int misalign_bf16_dot_available(void);

/// y[m, o] (+)= sum_k bf16(x[m, k]) * W[o, k] for all `out` rows of a bf16 W [out, in]: x is
/// rounded to bf16 (nearest even), pairs of products are exact and summed in f32 by
/// vdpbf16ps (which treats subnormal inputs as zero and flushes subnormal results). Runs on
/// `threads` threads of misalign_parallel. Returns 0 without touching y when the CPU lacks
/// AVX512_BF16, `in` is odd, or memory for the packed x (256 tokens at a time) is short.
int misalign_matmul_bf16_dot(float *y, size_t ldy, const float *x, size_t ldx, const uint16_t *w, size_t m,
                             size_t in, size_t out, int accumulate, size_t threads);
/// The same for a group of bf16 products sharing x (misalign_product): x packed once, the
/// tiles of all of them dealt out as one list.
int misalign_matmul_bf16_dot_group(const misalign_product *products, size_t count, const float *x, size_t ldx,
                                   size_t m, size_t in, int accumulate, size_t threads);

/// The same product for few rows of x (decoding), with the lanes along k: W read once as
/// stored, 32 values of k per instruction, each row's 16 lane sums added at its end. x is
/// rounded to bf16 into a per-thread buffer first. Any `in`, odd included. Runs on `threads`
/// threads of misalign_parallel over 16-row blocks of W; the result for a row of W does not
/// depend on the split. Returns 0 without touching y when the CPU lacks AVX512_BF16 or memory
/// for the rounded x (m x in rounded up to 32 bf16) is short.
int misalign_matmul_bf16_dot_rows(float *y, size_t ldy, const float *x, size_t ldx, const uint16_t *w, size_t m,
                                  size_t in, size_t out, int accumulate, size_t threads);
/// The same for a group of bf16 products sharing x (misalign_product): x rounded once.
int misalign_matmul_bf16_dot_rows_group(const misalign_product *products, size_t count, const float *x, size_t ldx,
                                        size_t m, size_t in, int accumulate, size_t threads);
#endif

#ifndef MISALIGN_BF16_DOT_NN_DECLS
#define MISALIGN_BF16_DOT_NN_DECLS
/// One term of misalign_matmul_bf16_dot_nn_group: a [m, k] (row stride lda, f32) times a bf16
/// W [k, n] (row stride ldw).
typedef struct {
    const float *a;
    size_t lda;
    const uint16_t *w;
    size_t ldw;
    size_t k;
} misalign_nn_term;

/// c[m, n] (+)= sum_o bf16(a[m, o]) * W[o, n] for a bf16 W [k, n]: the input gradient dx = dy W
/// of a frozen bf16 product y = x W^T. a is rounded to bf16 (nearest even), pairs of products
/// along o are exact and summed in f32 by vdpbf16ps (subnormal inputs read as zero, subnormal
/// results flushed). Any k (odd included) and n; c with row stride ldc, columns past n
/// untouched. Runs on `threads` threads of misalign_parallel over 32-column blocks of c; each
/// result is one chain over o in order, so it does not depend on `threads`. Returns 0 without
/// touching c when the CPU lacks AVX512_BF16 or memory for the rounded a is short.
int misalign_matmul_bf16_dot_nn(float *c, size_t ldc, const float *a, size_t lda, const uint16_t *w, size_t ldw, size_t m,
                                size_t k, size_t n, int accumulate, size_t threads);
/// The same for a sum of up to 8 terms into one c (the q, k and v projections' input
/// gradients): c (+)= sum_q bf16(a_q) W_q, the terms' pairs in order in one chain per result.
int misalign_matmul_bf16_dot_nn_group(float *c, size_t ldc, const misalign_nn_term *terms, size_t count, size_t m, size_t n,
                                      int accumulate, size_t threads);
#endif

#ifndef MISALIGN_F32_PACKED_DECLS
#define MISALIGN_F32_PACKED_DECLS
/// 1 if this CPU has the AVX-512 the packed product below needs.
int misalign_f32_packed_available(void);
/// Whether the packed product may be used (default 1); an atomic flag for benchmarks.
void misalign_set_f32_packed_enabled(int on);
int misalign_f32_packed_enabled(void);

/// y[m, o] (+)= sum_k x[m, k] W[o, k] in f32 for all `out` rows of W [out, in] (f32, or bf16
/// widened exactly to f32 12 rows x 512 values at a time), for many rows of x (prefill,
/// training): x packed with 32 tokens across the lanes (256 tokens at a time, on the pool's
/// threads), W read as stored, 12 rows of W by 32 tokens per tile. Each result is one chain of
/// FMAs over k in order, so it does not depend on `threads`. Runs on `threads` threads of
/// misalign_parallel. Returns 0 without touching y when the CPU lacks AVX-512, `in` is 0, or
/// memory for the packed x is short.
int misalign_matmul_packed(int is_bf16, float *y, size_t ldy, const float *x, size_t ldx, const void *w, size_t m,
                           size_t in, size_t out, int accumulate, size_t threads);
/// The same for a group of products of one dtype sharing x (misalign_product): x packed once,
/// the tiles of all of them dealt out as one list.
int misalign_matmul_packed_group(int is_bf16, const misalign_product *products, size_t count, const float *x, size_t ldx,
                                 size_t m, size_t in, int accumulate, size_t threads);
#endif

#ifndef MISALIGN_PEAK_DECLS
#define MISALIGN_PEAK_DECLS
/// The f32 FMA rate of `threads` threads of misalign_parallel, in GFLOP/s (an FMA counts 2):
/// independent vector FMAs from registers, the widest the CPU has (AVX-512 or AVX2), the best
/// of ten runs of about `seconds` / 10 each. 0 on CPUs with neither. For benchmarks.
double misalign_fma_peak_gflops(size_t threads, double seconds);
/// The same for the bf16 dot-product instruction (vdpbf16ps on 512-bit vectors, two products
/// per lane, each counted as 2 FLOP); 0 on CPUs without AVX512_BF16.
double misalign_bf16_dot_peak_gflops(size_t threads, double seconds);
#endif

#ifndef MISALIGN_ATTENTION_DECLS
#define MISALIGN_ATTENTION_DECLS
/// Causal attention of `count` new query rows at positions start ..< start + count over a
/// cache holding positions 0 ..< start + count: row i sees positions 0 ... start + i.
/// out[i, h*hd ..] = softmax_j(scale * q_i,h . k_j) v_j, grouped-query (head h reads key/value
/// head h / (heads / kv_heads)). q, out: [count, heads * hd] with row strides ldq, ldo. The
/// cache is `segments` runs of positions (a forked sequence reads its parent's): run s holds
/// positions first[s] ..< first[s] + len[s], ascending and contiguous, its keys for key/value
/// head g at keys[g * segments + s] ([len[s], hd]), values likewise. Runs on `threads` threads of
/// misalign_parallel. The softmax sums in double; exp is misalign_exp (within 2 ulp).
void misalign_attention(float *out, size_t ldo, const float *q, size_t ldq, size_t count, size_t start, size_t heads,
                        size_t kv_heads, size_t hd, float scale, const float *const *keys, const float *const *values,
                        const size_t *first, const size_t *len, size_t segments, size_t threads);

/// One sequence of misalign_attention_batch: its new rows (q, out, count, start) and its cache
/// (keys, values, first, len, segments), each as misalign_attention takes them.
typedef struct {
    float *out;
    const float *q;
    size_t count, start;
    const float *const *keys;
    const float *const *values;
    const size_t *first, *len;
    size_t segments;
} misalign_attention_seq;

/// misalign_attention for the new rows of several sequences in one job on the pool (a decoding
/// step of N samples: one job per layer, not N). Every sequence's rows use the strides ldq, ldo.
/// Each sequence gets the bits it gets alone, whatever the threads.
void misalign_attention_batch(const misalign_attention_seq *seqs, size_t nseq, size_t ldo, size_t ldq, size_t heads,
                              size_t kv_heads, size_t hd, float scale, size_t threads);
/// misalign_attention_batch with Gemma 2's two options: with softcap > 0 each scaled score s
/// becomes softcap * tanh(s / softcap) before the softmax; with window > 0 the row at position
/// p sees only keys p - window < j <= p (the others get probability 0). 0 and 0 give exactly
/// misalign_attention_batch.
void misalign_attention_batch_capped(const misalign_attention_seq *seqs, size_t nseq, size_t ldo, size_t ldq, size_t heads,
                                     size_t kv_heads, size_t hd, float scale, float softcap, size_t window, size_t threads);
#endif
