#include "framework/core/linear.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <vector>

#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "framework/core/threads.h"

namespace lminf {
namespace detail {
namespace {

inline float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The weight row n as float32 into `row` (bfloat16 widened exactly), or a pointer to it.
const float* weight_row(const void* w, bool w_bf16, int64_t n, int64_t K, std::vector<float>& row) {
  if (!w_bf16) return static_cast<const float*>(w) + n * K;
  const uint16_t* src = static_cast<const uint16_t*>(w) + n * K;
  row.resize(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) row[static_cast<size_t>(k)] = bf16_bits_to_float(src[k]);
  return row.data();
}

}  // namespace

void matvec_portable(const float* x, int64_t M, const void* w, bool w_bf16, int64_t n0, int64_t n1, int64_t K,
                     float* y, int64_t ldy) {
  std::vector<float> row;
  for (int64_t n = n0; n < n1; ++n) {
    const float* wr = weight_row(w, w_bf16, n, K, row);
    for (int64_t m = 0; m < M; ++m) {
      const float* xr = x + m * K;
      // Four partial sums (so the loop vectorises without reassociation flags).
      float s[4] = {0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 4 <= K; k += 4)
        for (int j = 0; j < 4; ++j) s[j] += xr[k + j] * wr[k + j];
      for (; k < K; ++k) s[0] += xr[k] * wr[k];
      y[m * ldy + n] = (s[0] + s[1]) + (s[2] + s[3]);
    }
  }
}

int pool_threads_used() {
  std::vector<char> seen(static_cast<size_t>(std::max(1, at::get_num_threads())), 0);
  at::parallel_for(0, static_cast<int64_t>(seen.size()), 1, [&](int64_t b, int64_t e) {
    (void)e;
    const int t = at::get_thread_num();
    if (t >= 0 && t < static_cast<int>(seen.size())) seen[static_cast<size_t>(t)] = 1;
    (void)b;
  });
  int n = 0;
  for (char c : seen) n += c;
  return n;
}

bool matvec_avx512_available() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

namespace {

#define LMINF_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

// 16 weights from k on (a masked load past K - 16), widened to float32.
template <bool kBf16>
LMINF_AVX512 inline __m512 load_w(const void* row, int64_t k, __mmask16 mask) {
  if constexpr (kBf16) {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(row) + k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(row) + k);
  }
}

// R weight rows n .. n+R-1 against the M rows of x: M x R accumulators of 16 lanes, each weight
// vector loaded once and used M times (decoding is bound by streaming the weights).
template <bool kBf16, int M, int R>
LMINF_AVX512 void block(const float* x, const void* w, int64_t n, int64_t K, float* y, int64_t ldy) {
  __m512 acc[M][R];
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = _mm512_setzero_ps();
  const size_t esize = kBf16 ? 2 : 4;
  const char* base = static_cast<const char*>(w) + static_cast<size_t>(n * K) * esize;
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 mask = K - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (K - k)) - 1u);
    __m512 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = load_w<kBf16>(base + static_cast<size_t>(r * K) * esize, k, mask);
    for (int m = 0; m < M; ++m) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + m * K + k);
      for (int r = 0; r < R; ++r) acc[m][r] = _mm512_fmadd_ps(xv, wv[r], acc[m][r]);
    }
  }
  for (int m = 0; m < M; ++m)
    for (int r = 0; r < R; ++r) y[m * ldy + n + r] = _mm512_reduce_add_ps(acc[m][r]);
}

template <bool kBf16, int M>
LMINF_AVX512 void rows_of(const float* x, const void* w, int64_t n0, int64_t n1, int64_t K, float* y, int64_t ldy) {
  constexpr int R = M <= 2 ? 4 : (M <= 4 ? 2 : 1);  // M x R <= 8 accumulators (plus R weight vectors)
  int64_t n = n0;
  for (; n + R <= n1; n += R) block<kBf16, M, R>(x, w, n, K, y, ldy);
  for (; n < n1; ++n) block<kBf16, M, 1>(x, w, n, K, y, ldy);
}

template <bool kBf16>
LMINF_AVX512 void dispatch(const float* x, int64_t M, const void* w, int64_t n0, int64_t n1, int64_t K, float* y,
                           int64_t ldy) {
  switch (M) {
    case 1: return rows_of<kBf16, 1>(x, w, n0, n1, K, y, ldy);
    case 2: return rows_of<kBf16, 2>(x, w, n0, n1, K, y, ldy);
    case 3: return rows_of<kBf16, 3>(x, w, n0, n1, K, y, ldy);
    case 4: return rows_of<kBf16, 4>(x, w, n0, n1, K, y, ldy);
    case 5: return rows_of<kBf16, 5>(x, w, n0, n1, K, y, ldy);
    case 6: return rows_of<kBf16, 6>(x, w, n0, n1, K, y, ldy);
    case 7: return rows_of<kBf16, 7>(x, w, n0, n1, K, y, ldy);
    case 8: return rows_of<kBf16, 8>(x, w, n0, n1, K, y, ldy);
    default: break;
  }
  // More rows than the register blocks: eight at a time.
  for (int64_t m = 0; m < M; m += 8) {
    const int64_t mm = std::min<int64_t>(8, M - m);
    dispatch<kBf16>(x + m * K, mm, w, n0, n1, K, y + m * ldy, ldy);
  }
}

}  // namespace

void matvec_avx512(const float* x, int64_t M, const void* w, bool w_bf16, int64_t n0, int64_t n1, int64_t K,
                   float* y, int64_t ldy) {
  LMINF_CHECK(matvec_avx512_available(), "matvec_avx512 on a CPU without AVX-512");
  if (w_bf16)
    dispatch<true>(x, M, w, n0, n1, K, y, ldy);
  else
    dispatch<false>(x, M, w, n0, n1, K, y, ldy);
}

}  // namespace detail

namespace {

using MatvecFn = void (*)(const float*, int64_t, const void*, bool, int64_t, int64_t, int64_t, float*, int64_t);

// Largest |error| of `fn` against a float64 product on a random problem of awkward sizes, in units
// of the float32 bound for its length (K ulps of the largest |x||w| sum).
bool kernel_agrees(MatvecFn fn, bool bf16) {
  std::mt19937 gen(17);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t M : {1, 3, 8, 11}) {
    const int64_t N = 37, K = 133;
    std::vector<float> x(static_cast<size_t>(M * K)), wf(static_cast<size_t>(N * K)), y(static_cast<size_t>(M * N));
    std::vector<uint16_t> wb(static_cast<size_t>(N * K));
    for (float& v : x) v = u(gen);
    for (size_t i = 0; i < wf.size(); ++i) {
      wb[i] = c10::BFloat16(u(gen)).x;
      wf[i] = bf16 ? detail::bf16_bits_to_float(wb[i]) : u(gen);
    }
    fn(x.data(), M, bf16 ? static_cast<const void*>(wb.data()) : wf.data(), bf16, 0, N, K, y.data(), N);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double p = double(x[m * K + k]) * wf[n * K + k];
          ref += p;
          mag += std::fabs(p);
        }
        const double bound = 2.0 * K * 0x1p-24 * mag + 1e-30;
        if (!(std::fabs(y[m * N + n] - ref) <= bound)) return false;
      }
  }
  return true;
}

struct Matvec {
  MatvecFn fn = detail::matvec_portable;
  std::string name = "portable";
};

const Matvec& chosen_matvec() {
  static const Matvec chosen = [] {
    Matvec m;
    if (detail::matvec_avx512_available()) {
      if (kernel_agrees(detail::matvec_avx512, false) && kernel_agrees(detail::matvec_avx512, true)) {
        m.fn = detail::matvec_avx512;
        m.name = "avx512";
      } else {
        log_warn("the AVX-512 matrix-vector kernel disagrees with a float64 product on this CPU; using the portable one");
      }
    }
    return m;
  }();
  return chosen;
}

bool plain_path(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (!x.device().is_cpu() || !w.device().is_cpu() || x.scalar_type() != w.scalar_type()) return true;
  if (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad())) return true;
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16) return true;
  if (w.dim() != 2 || !w.is_contiguous() || x.dim() < 1 || x.size(-1) != w.size(1)) return true;
  return b.defined() && (b.dim() != 1 || b.size(0) != w.size(0));
}

std::vector<int64_t> out_sizes(const at::Tensor& x, int64_t n) {
  std::vector<int64_t> s(x.sizes().begin(), x.sizes().end());
  s.back() = n;
  return s;
}

}  // namespace

std::string matvec_kernel() { return chosen_matvec().name; }

at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (plain_path(x, w, b)) return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
  keep_blas_single_threaded();
  const int64_t K = w.size(1), N = w.size(0), M = K > 0 ? x.numel() / K : 0;
  if (M == 0 || K == 0 || N == 0) return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
  if (M <= kMatvecRows) {
    at::Tensor xf = x.reshape({M, K}).to(at::kFloat).contiguous();
    at::Tensor y = at::empty({M, N}, x.options().dtype(at::kFloat));
    const MatvecFn fn = chosen_matvec().fn;
    const bool bf16 = w.scalar_type() == at::kBFloat16;
    const float* xp = xf.data_ptr<float>();
    const void* wp = w.data_ptr();
    float* yp = y.data_ptr<float>();
    // Chunks of at least ~32k weights, so a thread's share outweighs the hand-off.
    const int64_t grain = std::max<int64_t>(16, (32 * 1024) / K);
    at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) { fn(xp, M, wp, bf16, n0, n1, K, yp, N); });
    if (b.defined()) y.add_(b.to(at::kFloat));
    return y.to(x.scalar_type()).view(out_sizes(x, N));
  }
  const int threads = at::get_num_threads();
  // bfloat16: libtorch's oneDNN product (on the OpenMP pool); one thread: BLAS as it is.
  if (x.scalar_type() != at::kFloat || threads <= 1 || at::in_parallel_region())
    return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
  at::Tensor x2 = x.reshape({M, K});
  at::Tensor y = b.defined() ? b.expand({M, N}).contiguous() : at::empty({M, N}, x.options());
  // One column block of the output per thread, each a single-threaded BLAS product (ldc = N).
  const int64_t block = (N + threads - 1) / threads;
  at::parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n0 = t * block, n = std::min(N, n0 + block) - n0;
      if (n <= 0) continue;
      at::Tensor out = y.narrow(1, n0, n);
      if (b.defined())
        out.addmm_(x2, w.narrow(0, n0, n).t());
      else
        at::mm_out(out, x2, w.narrow(0, n0, n).t());
    }
  });
  return y.view(out_sizes(x, N));
}

namespace {

// Whether matmul_out splits the batch itself (else it is at::matmul_out).
bool pooled_batch(const at::Tensor& a, const at::Tensor& b) {
  if (!a.device().is_cpu() || a.requires_grad() || b.requires_grad() || a.dim() < 3 || a.dim() != b.dim() ||
      a.scalar_type() != b.scalar_type() || a.sizes().slice(0, a.dim() - 2) != b.sizes().slice(0, b.dim() - 2) ||
      a.size(-1) != b.size(-2) || at::get_num_threads() <= 1 || at::in_parallel_region())
    return false;
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  return M * N * K >= 4096 && a.numel() / std::max<int64_t>(1, M * K) >= 2;
}

}  // namespace

at::Tensor& matmul_out(at::Tensor& out, const at::Tensor& a, const at::Tensor& b) {
  if (!pooled_batch(a, b)) return at::matmul_out(out, a, b);
  keep_blas_single_threaded();
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const int64_t batch = a.numel() / (M * K);
  LMINF_CHECK(out.dim() == a.dim() && out.size(-2) == M && out.size(-1) == N && out.numel() == batch * M * N &&
                  out.scalar_type() == a.scalar_type(),
              "matmul_out: out has sizes ", out.sizes(), " for ", a.sizes(), " x ", b.sizes());
  at::Tensor a3 = a.reshape({batch, M, K}), b3 = b.reshape({batch, K, N});
  at::Tensor o3 = out.view({batch, M, N});  // a view of out's storage (leading dims flatten)
  at::parallel_for(0, batch, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      at::Tensor o = o3.select(0, i);
      at::mm_out(o, a3.select(0, i), b3.select(0, i));
    }
  });
  return out;
}

at::Tensor matmul(const at::Tensor& a, const at::Tensor& b) {
  if (!pooled_batch(a, b)) return at::matmul(a, b);
  std::vector<int64_t> sizes(a.sizes().begin(), a.sizes().end());
  sizes.back() = b.size(-1);
  at::Tensor out = at::empty(sizes, a.options());
  return lminf::matmul_out(out, a, b);
}

}  // namespace lminf
