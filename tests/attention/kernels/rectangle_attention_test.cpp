// rectangle_attention (every key visible to every row; dual chunk attention's inter-chunk views)
// against plain float64 softmax attention, with and without an ALiBi bias over explicit positions,
// on awkward sizes and tiles; its log-sum-exps against logsumexp of the float64 logits.
#include <gtest/gtest.h>

#include <cmath>

#include "attention/kernels/band_attention.h"
#include "framework/transformer/alibi.h"

namespace lminf {
namespace {

struct Case {
  int64_t B, H, Hkv, Tq, F, D, block_q, block_k;
  bool alibi;
};

void check(const Case& c, at::ScalarType dt, double tol) {
  at::manual_seed(31 + c.Tq * 5 + c.F);
  at::Tensor q = (at::randn({c.B, c.H, c.Tq, c.D}, at::kDouble) * 0.5).to(dt);  // already scaled
  at::Tensor k = at::randn({c.B, c.Hkv, c.F, c.D}, at::kDouble).to(dt);
  at::Tensor v = at::randn({c.B, c.Hkv, c.F, c.D + 3}, at::kDouble).to(dt);
  RectangleAttentionArgs a{q, k, v};
  a.opts = {c.block_q, c.block_k};
  const int64_t g = c.H / c.Hkv;
  at::Tensor s = at::matmul(q.to(at::kDouble), k.to(at::kDouble).repeat_interleave(g, 1).transpose(-1, -2));
  if (c.alibi) {
    // Fractional query positions per row, integer key positions.
    at::Tensor q_pos = at::arange(c.Tq, at::kDouble) * 0.75 + 20.0, k_pos = at::remainder(at::arange(c.F, at::kLong), 7);
    a.alibi = AlibiBias{alibi_slopes(c.H, 8.0), q_pos, false, k_pos};
    at::Tensor dist = q_pos.unsqueeze(1) - k_pos.to(at::kDouble).unsqueeze(0);
    s = s - alibi_slopes(c.H, 8.0).to(at::kDouble).view({1, -1, 1, 1}) * dist;
  }
  const BandAttentionResult got = rectangle_attention(a);
  at::Tensor want = at::matmul(at::softmax(s, -1), v.to(at::kDouble).repeat_interleave(g, 1));
  ASSERT_EQ(got.out.sizes(), want.sizes());
  EXPECT_EQ(got.out.scalar_type(), dt);
  EXPECT_LT((got.out.to(at::kDouble) - want).abs().max().item<double>(), tol);
  EXPECT_LT((got.lse.to(at::kDouble) - at::logsumexp(s, -1)).abs().max().item<double>(), tol);
}

TEST(RectangleAttention, MatchesPlainSoftmaxAttention) {
  const std::vector<Case> cases = {
      {1, 1, 1, 1, 1, 4, 1, 1, false},     // one row, one key
      {2, 4, 2, 13, 17, 8, 4, 5, false},   // GQA, tiles dividing nothing
      {2, 6, 3, 7, 40, 16, 7, 40, true},   // one key tile, ALiBi of 6 heads
      {1, 8, 1, 23, 9, 8, 5, 2, true},     // multi-query, many key tiles
  };
  // Float64: rounding only. Float32: outputs O(1), logits O(5), rounding of a few hundred ulp.
  for (const Case& c : cases) {
    check(c, at::kDouble, 1e-12);
    check(c, at::kFloat, 5e-5);
  }
}

}  // namespace
}  // namespace lminf
