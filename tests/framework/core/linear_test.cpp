// lminf::linear and lminf::matmul against float64 products on random inputs of awkward sizes, on
// 1 and 2 threads, float32 and bfloat16, every matrix-vector kernel this CPU has.
#include "framework/core/linear.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "framework/core/threads.h"

namespace lminf {
namespace {

// |y - ref| <= bound elementwise, the bound from the computation: float32 sums of K terms (K unit
// roundoffs of the sum of |terms|, twice for the split), plus the output's rounding to its dtype.
void expect_close(const at::Tensor& y, const at::Tensor& ref64, const at::Tensor& mag64, int64_t K,
                  at::ScalarType out_dtype, const std::string& what) {
  const double u_out = out_dtype == at::kBFloat16 ? 0x1p-8 : 0x1p-24;
  // bfloat16 may round twice (the product, then with the bias added): u_out of |ref| + mag.
  at::Tensor bound = mag64 * (2.0 * (K + 2) * 0x1p-24) + (out_dtype == at::kBFloat16 ? ref64.abs() + mag64 : ref64.abs()) * u_out + 1e-30;
  at::Tensor err = (y.to(at::kDouble) - ref64).abs();
  const double worst = (err / bound).max().item<double>();
  EXPECT_LE(worst, 1.0) << what << ": worst error / bound = " << worst;
}

struct Case {
  int64_t M, N, K;
};

void check_linear(at::ScalarType dtype, bool bias, int threads) {
  at::set_num_threads(threads);
  for (Case c : std::vector<Case>{{1, 1, 1}, {1, 37, 133}, {2, 16, 16}, {3, 65, 17}, {5, 100, 200}, {8, 129, 255},
                                  {9, 31, 47}, {17, 130, 70}, {64, 77, 96}, {130, 33, 513}}) {
    at::manual_seed(c.M * 1000 + c.N + c.K);
    at::Tensor x = at::randn({c.M, c.K}).to(dtype), w = at::randn({c.N, c.K}).to(dtype);
    at::Tensor b = bias ? at::randn({c.N}).to(dtype) : at::Tensor();
    at::Tensor y = lminf::linear(x, w, b);
    ASSERT_EQ(y.sizes(), (at::IntArrayRef{c.M, c.N}));
    ASSERT_EQ(y.scalar_type(), dtype);
    at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble);
    at::Tensor ref = at::mm(xd, wd.t()), mag = at::mm(xd.abs(), wd.abs().t());
    if (bias) {
      ref = ref + b.to(at::kDouble);
      mag = mag + b.to(at::kDouble).abs();
    }
    expect_close(y, ref, mag, c.K, dtype,
                 std::string(c10::toString(dtype)) + " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) +
                     " K=" + std::to_string(c.K) + " threads=" + std::to_string(threads));
  }
}

TEST(Linear, Float32MatchesFloat64OnOneAndTwoThreads) {
  for (int th : {1, 2})
    for (bool bias : {false, true}) check_linear(at::kFloat, bias, th);
}

TEST(Linear, BFloat16MatchesFloat64OnOneAndTwoThreads) {
  for (int th : {1, 2})
    for (bool bias : {false, true}) check_linear(at::kBFloat16, bias, th);
}

TEST(Linear, LeadingDimensionsAndNonContiguousInputs) {
  at::manual_seed(3);
  at::Tensor x = at::randn({2, 3, 40}).transpose(0, 1);  // [3, 2, 40] non-contiguous, 6 rows
  at::Tensor w = at::randn({21, 40});
  at::Tensor y = lminf::linear(x, w);
  ASSERT_EQ(y.sizes(), (at::IntArrayRef{3, 2, 21}));
  at::Tensor ref = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t());
  at::Tensor mag = at::matmul(x.to(at::kDouble).abs(), w.to(at::kDouble).abs().t());
  expect_close(y, ref, mag, 40, at::kFloat, "non-contiguous x");
}

TEST(Linear, AutogradAndOtherDtypesTakeLibtorchsPath) {
  at::Tensor x = at::randn({2, 8}).set_requires_grad(true), w = at::randn({4, 8});
  at::Tensor y = lminf::linear(x, w);
  EXPECT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(at::allclose(x.grad(), w.sum(0).expand({2, 8})));
  at::Tensor xd = at::randn({3, 5}, at::kDouble), wd = at::randn({2, 5}, at::kDouble);
  EXPECT_TRUE(at::equal(lminf::linear(xd, wd), at::linear(xd, wd)));
}

TEST(Linear, EveryMatvecKernelOfThisCpuAgreesWithThePortableOne) {
  EXPECT_TRUE(matvec_kernel() == "avx512" || matvec_kernel() == "portable") << matvec_kernel();
  if (!detail::matvec_avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU: only the portable kernel runs";
  if (detail::matvec_avx512_available()) EXPECT_EQ(matvec_kernel(), "avx512");
  for (bool bf16 : {false, true})
    for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13})
      for (int64_t K : {1, 15, 16, 17, 100, 767}) {
        const int64_t N = 23;
        at::manual_seed(M * 100 + K);
        at::Tensor x = at::randn({M, K});
        at::Tensor w = at::randn({N, K}).to(bf16 ? at::kBFloat16 : at::kFloat);
        at::Tensor a = at::zeros({M, N}), p = at::zeros({M, N});
        // A sub-range of rows, written at row stride N: the other columns must stay untouched.
        detail::matvec_avx512(x.data_ptr<float>(), M, w.data_ptr(), bf16, 3, N - 2, K, a.data_ptr<float>(), N);
        detail::matvec_portable(x.data_ptr<float>(), M, w.data_ptr(), bf16, 3, N - 2, K, p.data_ptr<float>(), N);
        at::Tensor wd = w.to(at::kDouble);
        at::Tensor ref = at::zeros({M, N}, at::kDouble), mag = at::zeros({M, N}, at::kDouble);
        ref.narrow(1, 3, N - 5).copy_(at::mm(x.to(at::kDouble), wd.narrow(0, 3, N - 5).t()));
        mag.narrow(1, 3, N - 5).copy_(at::mm(x.to(at::kDouble).abs(), wd.narrow(0, 3, N - 5).abs().t()));
        const std::string what = std::string(bf16 ? "bf16" : "f32") + " M=" + std::to_string(M) + " K=" + std::to_string(K);
        expect_close(a, ref, mag, K, at::kFloat, "avx512 " + what);
        expect_close(p, ref, mag, K, at::kFloat, "portable " + what);
        EXPECT_EQ(a.narrow(1, 0, 3).abs().max().item<float>(), 0.f) << what;
        EXPECT_EQ(a.narrow(1, N - 2, 2).abs().max().item<float>(), 0.f) << what;
      }
}

TEST(Matmul, BatchedTilesMatchFloat64IncludingStridedOutputs) {
  for (int th : {1, 2}) {
    at::set_num_threads(th);
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      at::manual_seed(th * 7 + (dtype == at::kFloat));
      at::Tensor a = at::randn({2, 3, 19, 24}).to(dtype);
      at::Tensor kt = at::randn({2, 3, 50, 24}).to(dtype).narrow(2, 5, 33).transpose(-1, -2);  // [2,3,24,33]
      at::Tensor ref = at::matmul(a.to(at::kDouble), kt.to(at::kDouble));
      at::Tensor mag = at::matmul(a.to(at::kDouble).abs(), kt.to(at::kDouble).abs());
      expect_close(lminf::matmul(a, kt), ref, mag, 24, dtype, "matmul");
      at::Tensor wide = at::full({2, 3, 19, 40}, 7.0, at::TensorOptions().dtype(dtype));
      at::Tensor part = wide.narrow(-1, 4, 33);
      lminf::matmul_out(part, a, kt);
      expect_close(part, ref, mag, 24, dtype, "matmul_out into a strided view");
      EXPECT_TRUE(at::all(wide.narrow(-1, 0, 4) == 7).item<bool>());
      EXPECT_TRUE(at::all(wide.narrow(-1, 37, 3) == 7).item<bool>());
    }
  }
}

TEST(Threads, BlasStaysSingleThreadedAfterSettingThreads) {
  set_compute_threads(2);
  EXPECT_EQ(compute_threads(), 2);
  // The products' parallel loops really use both threads (not one: OpenMP pragmas compiled out).
  EXPECT_EQ(detail::pool_threads_used(), 2);
  if (!keep_blas_single_threaded()) GTEST_SKIP() << "libtorch does not use OpenBLAS here";
  EXPECT_EQ(blas_threads(), 1);
}

}  // namespace
}  // namespace lminf
