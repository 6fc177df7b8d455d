// The blockwise online-softmax kernel against the dense float64 reference, on awkward sizes.
#include <gtest/gtest.h>

#include "attention/kernels/blockwise.h"
#include "attention/reference/dense_reference.h"

namespace lminf {
namespace {

struct Case {
  int64_t B, H, Hkv, Tq, K, D, block_q, block_k;
  std::optional<int64_t> window;
};

void check(const Case& c, at::ScalarType dtype, double tol) {
  at::manual_seed(1234 + c.Tq * 7 + c.K);
  at::Tensor q = at::randn({c.B, c.H, c.Tq, c.D}).to(dtype);
  at::Tensor k = at::randn({c.B, c.Hkv, c.K, c.D}).to(dtype);
  at::Tensor v = at::randn({c.B, c.Hkv, c.K, c.D}).to(dtype);
  const int64_t q_offset = c.K - c.Tq;
  const double scale = 1.0 / std::sqrt(double(c.D));
  at::Tensor got = blockwise_causal_attention(q, k, v, q_offset, c.window, scale, {c.block_q, c.block_k});
  at::Tensor want = dense_attention_reference(q, k, v, causal_visibility(c.Tq, c.K, q_offset, c.window), scale);
  ASSERT_EQ(got.sizes(), want.sizes());
  EXPECT_EQ(got.scalar_type(), dtype);
  const double err = (got.to(at::kDouble) - want).abs().max().item<double>();
  EXPECT_LT(err, tol) << "B=" << c.B << " H=" << c.H << " Hkv=" << c.Hkv << " Tq=" << c.Tq << " K=" << c.K
                      << " bq=" << c.block_q << " bk=" << c.block_k;
}

TEST(Blockwise, MatchesDenseReferenceOnAwkwardSizes) {
  const std::vector<Case> cases = {
      {1, 1, 1, 1, 1, 4, 1, 1, std::nullopt},      // a single token
      {2, 4, 2, 37, 37, 8, 5, 7, std::nullopt},    // prefill, blocks not dividing T, GQA
      {1, 6, 3, 64, 64, 16, 64, 64, std::nullopt}, // one tile
      {1, 8, 1, 100, 100, 8, 33, 17, std::nullopt},  // multi-query (one kv head)
      {1, 4, 4, 1, 129, 8, 16, 32, std::nullopt},  // decode with a long cache
      {2, 4, 2, 13, 50, 8, 4, 9, std::nullopt},    // a chunk after 37 cached entries
      {1, 4, 2, 70, 70, 8, 16, 16, int64_t{9}},    // sliding window
      {1, 4, 2, 5, 40, 8, 3, 7, int64_t{11}},      // window with cache
  };
  for (const auto& c : cases) check(c, at::kFloat, 2e-5);
}

TEST(Blockwise, BFloat16CloseToReference) {
  check({1, 4, 2, 45, 45, 16, 8, 16, std::nullopt}, at::kBFloat16, 3e-2);
}

TEST(Blockwise, DoubleIsExact) {
  check({1, 3, 1, 29, 41, 8, 6, 5, std::nullopt}, at::kDouble, 1e-12);
}

// Observers receive every tile; stitched together they equal the dense logits of the visible pairs.
class TileCollector : public Observer {
 public:
  at::Tensor full;  // [B, H, Tq, K]
  bool wants(Site s, int64_t) const override { return s == Site::kAttnLogits; }
  void observe(const Observation& o) override {
    full.narrow(2, o.q_start, o.data.size(2)).narrow(3, o.k_start, o.data.size(3)).copy_(o.data);
  }
};

TEST(Blockwise, ObserverTilesReassembleDenseLogits) {
  const int64_t B = 1, H = 4, Hkv = 2, T = 23, D = 8;
  at::manual_seed(7);
  at::Tensor q = at::randn({B, H, T, D}), k = at::randn({B, Hkv, T, D}), v = at::randn({B, Hkv, T, D});
  auto collector = std::make_shared<TileCollector>();
  collector->full = at::full({B, H, T, T}, -INFINITY);
  ObserverSet obs;
  obs.add(collector);
  const double scale = 0.5;
  blockwise_causal_attention(q, k, v, 0, std::nullopt, scale, {5, 6}, TileReport{&obs, 0, 0, 0});
  at::Tensor dense = at::matmul(q, k.repeat_interleave(2, 1).transpose(-1, -2)) * scale;
  at::Tensor vis = causal_visibility(T, T, 0);
  dense = dense.masked_fill(at::logical_not(vis), -INFINITY);
  at::Tensor finite = at::isfinite(dense);
  EXPECT_TRUE(at::equal(finite, at::isfinite(collector->full)));
  EXPECT_LT((dense.masked_select(finite) - collector->full.masked_select(finite)).abs().max().item<double>(), 1e-5);
}

}  // namespace
}  // namespace lminf
