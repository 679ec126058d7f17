// log(sum_i exp(z[i])) of one logits row: the local judge's log-softmax normaliser, one per
// scored row of 151,936 logits. The max runs in f32; each exp(z[i] - max) (the difference
// rounded to f32, as the scalar code before it did) is evaluated in f64 and summed in f64 over
// 16 lanes, so the result is that of a plain f64 loop up to the summation order (about 1e-16
// relative, tested against one).
#include "misalign_kernels.h"
#include "clones.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LANES 16

// exp(x) for x <= 0 in f64: x = k ln2 + r with |r| <= ln2 / 2, exp(r) by its Taylor series to
// degree 13 (truncation below 5e-18 relative), times 2^k built in the exponent bits. Below -708
// the result would be subnormal and is returned as 0: beside the row's max term (exp(0) = 1) it
// is below one ulp of the sum. NaN stays NaN.
static inline double exp_nonpositive(double x) {
    const double magic = 0x1.8p52;
    double t = x * 0x1.71547652b82fep0 + magic; // round(x / ln2) in the low mantissa bits
    double kd = t - magic;
    double r = (x - kd * 6.93147180369123816490e-01) - kd * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t tb;
    memcpy(&tb, &t, 8);
    uint64_t sb = (tb + 1023) << 52; // 2^k: k is the low bits of t, -1022 <= k <= 0 here
    double s;
    memcpy(&s, &sb, 8);
    return x < -708.0 ? 0.0 : p * s;
}

MISALIGN_CLONES
double misalign_log_sum_exp(const float *z, size_t n) {
    if (n == 0) return -INFINITY;
    float m[LANES];
    for (int l = 0; l < LANES; l++) m[l] = -INFINITY;
    size_t full = n / LANES * LANES;
    for (size_t i = 0; i < full; i += LANES)
        for (int l = 0; l < LANES; l++) m[l] = z[i + l] > m[l] ? z[i + l] : m[l];
    float mx = -INFINITY;
    for (int l = 0; l < LANES; l++) mx = m[l] > mx ? m[l] : mx;
    for (size_t i = full; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    if (mx == INFINITY || mx == -INFINITY) return (double)mx; // all -inf, or a +inf logit
    double s[LANES];
    for (int l = 0; l < LANES; l++) s[l] = 0;
    for (size_t i = 0; i < full; i += LANES)
        for (int l = 0; l < LANES; l++) s[l] += exp_nonpositive((double)(z[i + l] - mx));
    double sum = 0;
    for (size_t i = full; i < n; i++) sum += exp_nonpositive((double)(z[i] - mx));
    for (int l = 0; l < LANES; l++) sum += s[l];
    return (double)mx + log(sum);
}
