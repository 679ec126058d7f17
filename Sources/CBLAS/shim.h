#ifndef MISALIGN_CBLAS_SHIM_H
#define MISALIGN_CBLAS_SHIM_H
// OpenBLAS's cblas.h also declares openblas_set_num_threads / openblas_get_corename.
// Debian's libopenblas-dev puts it under openblas-pthread/ (pkg-config adds that path).
#include <cblas.h>
#endif
