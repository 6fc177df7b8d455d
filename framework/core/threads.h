// CPU threads for compute: libtorch's intra-op pool and, where libtorch delegates to OpenBLAS
// (Debian's build), OpenBLAS's own pool, which at::set_num_threads does not reach.
#pragma once

namespace lminf {

// n > 0: use n threads in both pools. Returns false if OpenBLAS was not found (libtorch's pool is set anyway).
bool set_compute_threads(int n);
int compute_threads();

}  // namespace lminf
