// CPU threads for compute: one pool, libtorch's (OpenMP). Debian's libtorch hands float32 matrix
// products to OpenBLAS, whose own pthread pool would spin-wait against OpenMP's; lminf keeps
// OpenBLAS at one thread and splits the products over libtorch's pool itself (framework/core/linear.h).
#pragma once

namespace lminf {

// n > 0: libtorch's pool gets n threads; OpenBLAS stays at one (keep_blas_single_threaded).
void set_compute_threads(int n);
// Threads of the compute pool.
int compute_threads();
// Sets OpenBLAS (when libtorch uses it) to one thread, once per process; idempotent and cheap.
// Returns false when no OpenBLAS is loaded.
bool keep_blas_single_threaded();
// OpenBLAS's thread count (1 after keep_blas_single_threaded), or -1 without OpenBLAS.
int blas_threads();

}  // namespace lminf
