#ifndef MISALIGN_CLONES_H
#define MISALIGN_CLONES_H
// Every kernel is compiled for x86-64-v4 (AVX-512), v3 (AVX2/FMA) and the baseline; the
// loader picks the widest the CPU has, so the package needs no -march flags.
#if defined(__x86_64__) && defined(__clang__)
#define MISALIGN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MISALIGN_CLONES
#endif
#endif
