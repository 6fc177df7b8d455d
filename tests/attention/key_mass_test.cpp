// The attention mass the kernels report for the KV-cache policies (AttentionCall::key_mass), for
// every registered variant that reports it, on each of its registry test sections: against the
// column sums of the dense float64 softmax of the variant's rule (attention/reference), over the
// last `rows` queries and the query heads of each kv group. Covers the blockwise kernel (vanilla,
// rotary), the band kernel's fused path (lambda, streaming) and its online path with the second
// pass (distance_limit's far part and triangle, vanilla under ALiBi), with GQA, batch 2 and sizes
// that cut the tiles unevenly.
#include <gtest/gtest.h>

#include <cmath>

#include "attention/reference/variant_rules.h"
#include "attention/registry.h"
#include "framework/transformer/alibi.h"
#include "framework/transformer/rope.h"

namespace lminf {
namespace {

struct MassCase {
  at::Tensor got, want;  // [B, Hkv, K]
};

// rows of the call's last queries; q [B, H, Tq, D], k/v [B, Hkv, K, D] (the cache, then the call).
MassCase mass_and_reference(const AttentionVariant& variant, const AttentionSpec& spec, const at::Tensor& q,
                            const at::Tensor& k, const at::Tensor& v, const RotaryEmbedding* rope,
                            const at::Tensor& slopes, int64_t rows) {
  KeyMass mass{rows, at::Tensor()};
  AttentionCall call;
  call.q = q, call.k = k, call.v = v;
  call.q_offset = k.size(2) - q.size(2);
  call.abs_q_start = call.q_offset;
  call.rope = rope;
  call.alibi_slopes = slopes;
  call.layer = 1;
  call.key_mass = &mass;
  variant.forward(call);
  const RuleEncoding enc = rope ? RuleEncoding(*rope) : RuleEncoding::alibi(slopes);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  RuleCall rc{q.to(at::kDouble), k.to(at::kDouble), call.q_offset, 1, &enc, k.size(2), scale};
  const AttentionRule rule = (*variant_rule(spec.variant))(spec, rc);
  at::Tensor p = at::softmax(rule_logits(rc.q, rc.k, rule, enc, rc.seq_len, scale), -1);  // [B, H, Tq, K]
  const int64_t B = q.size(0), Hkv = k.size(1), Tq = q.size(2), K = k.size(2);
  at::Tensor want = p.view({B, Hkv, q.size(1) / Hkv, Tq, K}).narrow(3, Tq - rows, rows).sum({2, 3});
  return {mass.sum, want};
}

// Float64: rounding only. Float32: each probability is good to a few hundred ulp relative (the
// logits of O(1) queries and keys, the exp), and the mass sums g * rows of them: the error grows with
// the number of terms, relative to the mass (at most g * rows).
double tolerance(at::ScalarType dt, int64_t terms) {
  return (dt == at::kDouble ? 1e-12 : 5e-6) * static_cast<double>(terms);
}

class KeyMassOfEveryVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(KeyMassOfEveryVariant, EqualsTheDenseProbabilitiesOfItsRule) {
  const AttentionSpec spec = AttentionSpec::parse(GetParam());
  auto variant = make_attention(spec);
  if (!variant->support().key_mass) GTEST_SKIP() << spec.variant << " reports no attention mass (refused with attention.cache)";
  at::manual_seed(41);
  const int64_t B = 2, H = 4, Hkv = 2, D = 8;
  RotaryEmbedding rope(D, 10000.0, 2048, RopeScaling{}, RopeLayout::kHalf);
  const at::Tensor slopes = alibi_slopes(H, 8.0);
  for (at::ScalarType dt : {at::kDouble, at::kFloat}) {
    for (bool alibi : {false, true}) {
      // A prefill of 37, and a chunk of 9 after 28 cached keys.
      for (const auto& [K, Tq] : {std::pair<int64_t, int64_t>{37, 37}, std::pair<int64_t, int64_t>{37, 9}}) {
        at::Tensor q = (at::randn({B, H, Tq, D}, at::kDouble) * 0.8).to(dt);
        at::Tensor k = (at::randn({B, Hkv, K, D}, at::kDouble) * 0.8).to(dt);
        at::Tensor v = at::randn({B, Hkv, K, D}, at::kDouble).to(dt);
        for (int64_t rows : {int64_t{1}, int64_t{3}, Tq}) {
          const MassCase r = mass_and_reference(*variant, spec, q, k, v, alibi ? nullptr : &rope,
                                                alibi ? slopes : at::Tensor(), rows);
          ASSERT_TRUE(r.got.defined()) << GetParam();
          ASSERT_EQ(r.got.sizes(), r.want.sizes());
          const double err = (r.got.to(at::kDouble) - r.want).abs().max().item<double>();
          EXPECT_LT(err, tolerance(dt, (H / Hkv) * rows))
              << GetParam() << (alibi ? " alibi" : " rotary") << " K=" << K << " Tq=" << Tq << " rows=" << rows
              << " " << at::toString(dt);
          // Each asked row spreads probability 1 over its keys, in each of the g query heads.
          EXPECT_NEAR(r.got.to(at::kDouble).sum(-1).mean().item<double>(), static_cast<double>((H / Hkv) * rows),
                      tolerance(dt, (H / Hkv) * rows) * K);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, KeyMassOfEveryVariant, ::testing::ValuesIn(attention_test_sections()));

}  // namespace
}  // namespace lminf
