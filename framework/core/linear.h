// The dense products of the model on one thread pool. libtorch runs its elementwise ops on its
// OpenMP pool, while Debian's libtorch hands float32 matrix products to OpenBLAS, whose own pthread
// pool spin-waits against OpenMP's when both have threads (issue 17: two threads slower than one).
// lminf therefore keeps OpenBLAS at one thread (keep_blas_single_threaded, at start-up) and splits
// each product over libtorch's pool itself:
//   - linear() with few rows (decoding: at most kMatvecRows rows) is a matrix-vector product that
//     streams each weight row once (memory-bound; float32 or bfloat16 weights, float32 sums), split
//     over output features; an AVX-512 kernel where the CPU has it, checked against a float64
//     product before first use, a plain loop otherwise;
//   - linear() with more rows splits the output features into one single-threaded BLAS product per
//     thread (bfloat16 goes through libtorch's oneDNN path, which runs on the same OpenMP pool);
//   - matmul() of batched operands (attention tiles) splits the batch over the pool.
// Anything else (autograd, CUDA, other dtypes) is libtorch's own at::linear / at::matmul.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace lminf {

inline constexpr int64_t kMatvecRows = 8;

// y = x w^T + b. x: [..., in], w: [out, in], b: [out] or undefined. Same result as at::linear up to
// float32 summation order (bfloat16: sums in float32, rounded once).
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = at::Tensor());

// at::matmul / at::matmul_out, the batch split over the pool when a, b have the same rank >= 3 and
// equal batch dimensions (no broadcasting); out may be a view whose leading dimensions flatten.
at::Tensor matmul(const at::Tensor& a, const at::Tensor& b);
at::Tensor& matmul_out(at::Tensor& out, const at::Tensor& a, const at::Tensor& b);

// Which matrix-vector kernel linear() uses ("avx512" or "portable"), after checking it.
std::string matvec_kernel();

namespace detail {
// The kernels themselves, for tests: y[m, n] = sum_k x[m, k] w[n, k] for n in [n0, n1), x float32
// [M, K] contiguous, w [N, K] contiguous (float32, or bfloat16 as raw 16-bit words), y float32 with
// row stride ldy.
void matvec_portable(const float* x, int64_t M, const void* w, bool w_bf16, int64_t n0, int64_t n1, int64_t K,
                     float* y, int64_t ldy);
bool matvec_avx512_available();
// How many threads of the pool a parallel_for in this file runs on (the file must be compiled with
// OpenMP, or at::parallel_for's inlined pragma is ignored and everything runs on one thread).
int pool_threads_used();
void matvec_avx512(const float* x, int64_t M, const void* w, bool w_bf16, int64_t n0, int64_t n1, int64_t K,
                   float* y, int64_t ldy);
}  // namespace detail

}  // namespace lminf
