// The factor observers under the position-aware variants: whatever tiles a variant reports (two
// branches, far keys at a capped distance, masked middles), the tile-accumulated entropy, the
// chosen-query logits and the per-distance-bucket statistics equal those of the variant's dense rule
// reference (attention/reference/rule_reference.h), with distances measured between true positions.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "attention/variants/dca.h"
#include "attention/variants/distance_limit.h"
#include "attention/variants/infllm.h"
#include "attention/variants/lambda.h"
#include "attention/reference/rule_reference.h"
#include "attention/variants/rerope.h"
#include "attention/variants/self_extend.h"
#include "attention/variants/streaming.h"
#include "analysis/factors/attention_entropy.h"
#include "analysis/factors/logit_distance_stats.h"
#include "analysis/factors/query_logits.h"

namespace lminf {
namespace {

struct VariantCase {
  std::string label;
  std::function<std::unique_ptr<AttentionVariant>()> make;
  std::function<AttentionRule(int64_t T)> rule;
};

std::vector<VariantCase> variant_cases(const BlockwiseOptions& tiles) {
  return {
      {"lambda L=D=12 G=3", [tiles] { return std::make_unique<LambdaAttention>(LambdaOptions{12, 3, int64_t{12}, tiles}); },
       [](int64_t t) { return lambda_rule(t, t, 0, 12, 3, int64_t{12}); }},
      {"streaming S=2 R=9", [tiles] { return std::make_unique<StreamingAttention>(StreamingOptions{2, 9, tiles}); },
       [](int64_t t) { return streaming_rule(t, t, 0, 2, 9); }},
      {"distance_limit D=10", [tiles] {
         DistanceLimitOptions o;
         o.limit_distance = 10;
         o.tiles = tiles;
         return std::make_unique<DistanceLimitAttention>(o);
       },
       [](int64_t t) { return distance_limit_rule(t, t, 0, int64_t{10}, 4096, 10, 0.0); }},
      {"self_extend G=3 W=8", [tiles] { return std::make_unique<SelfExtendAttention>(SelfExtendParams{3, 8}, tiles); },
       [](int64_t t) { return self_extend_rule(t, t, 0, 3, 8); }},
      {"rerope w=7 leaky k=3 log N=16",
       [tiles] { return std::make_unique<ReropeAttention>(ReropeParams{7, 3.0, int64_t{16}}, tiles); },
       [](int64_t t) { return rerope_rule(t, t, 0, 7, 3.0, int64_t{16}); }},
      {"dca chunk_size=11 local_window=3", [tiles] { return std::make_unique<DcaAttention>(DcaParams{11, 3}, tiles); },
       [](int64_t t) { return dca_rule(t, t, 0, 11, 3); }},
  };
}

TEST(FactorObserversUnderVariants, EqualTheDenseRuleReference) {
  const int64_t B = 2, H = 4, Hkv = 2, T = 45, D = 16;
  const BlockwiseOptions tiles{6, 5};
  std::vector<VariantCase> cases = variant_cases(tiles);
  at::manual_seed(21);
  at::Tensor q = at::randn({B, H, T, D}, at::kDouble).to(at::kFloat);
  at::Tensor k = at::randn({B, Hkv, T, D}, at::kDouble).to(at::kFloat);
  at::Tensor v = at::randn({B, Hkv, T, D}, at::kDouble).to(at::kFloat);
  const RotaryEmbedding rope(D, 10000.0, 2048, RopeScaling{});
  InfLLMParams infllm;  // memory blocks retrieved per chunk of 4 queries: two branches at n_local - 1
  infllm.n_local = 7;
  infllm.n_init = 2;
  infllm.memory_block_size = 3;
  infllm.topk = 2;
  infllm.repr_topk = 2;
  infllm.exc_block_size = 4;
  const InfLLMRuleSizes infllm_sizes{2, 7, 3, 2, 2, 4, false};
  cases.push_back({"infllm n_local=7 block=3 topk=2", [&] { return std::make_unique<InfLLMAttention>(infllm, tiles); },
                   [&](int64_t t) { return infllm_rule(q, k, 0, infllm_sizes, rope, t, 1.0 / std::sqrt(double(D))); }});
  const std::vector<int64_t> edges{0, 5, 11, 12, 13, 30, 45};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    auto variant = c.make();
    auto ent = std::make_shared<AttentionEntropyObserver>(AttentionEntropyOptions{{{2}, HeadSlots({}, H)}, T});
    auto ql = std::make_shared<QueryLogitsObserver>(QueryLogitsOptions{{{2}, HeadSlots({}, H)}, T, 20});
    auto ld = std::make_shared<LogitDistanceObserver>(LogitDistanceOptions{{{2}, HeadSlots({}, H)}, edges});
    ObserverSet set;
    BatchRows rows{{0, 1}, {T, T}};
    for (const auto& o : std::vector<std::shared_ptr<FactorObserver>>{ent, ql, ld}) {
      set.add(o);
      o->begin_batch(rows);
    }
    AttentionCall call;
    call.q = q;
    call.k = k;
    call.v = v;
    call.rope = &rope;
    call.layer = 2;
    call.observers = &set;
    variant->forward(call);

    const at::Tensor s = rule_logits(q.to(at::kDouble), k.to(at::kDouble), c.rule(T), rope, T, 1.0 / std::sqrt(double(D)));
    // Entropy.
    at::Tensor logp = at::log_softmax(s, -1);
    at::Tensor want = -at::where(at::isfinite(s), logp.exp() * logp, at::zeros_like(s)).sum(-1);
    auto er = ent->end_batch();
    EXPECT_LT((er[0].data.to(at::kDouble) - want).abs().max().item<double>(), 1e-4);
    EXPECT_TRUE(at::equal(er[1].data.to(at::kLong), at::isfinite(s).sum(-1)));
    // Chosen queries 19, 39, 44: their rows of the rule's logits, -inf where the rule hides the key.
    auto qr = ql->end_batch();
    const at::Tensor rows_got = qr[0].data, pos = qr[2].data;
    for (int64_t r = 0; r < pos.size(0); ++r) {
      const int64_t b = r / 3, p = pos[r].item<int64_t>();
      at::Tensor got = rows_got[r].narrow(1, 0, p + 1).to(at::kDouble), ref = s[b].select(1, p).narrow(1, 0, p + 1);
      EXPECT_TRUE(at::equal(at::isfinite(got), at::isfinite(ref))) << p;
      EXPECT_LT((got - ref).masked_select(at::isfinite(ref)).abs().max().item<double>(), 1e-4);
    }
    // Buckets by true distance p - j.
    auto lr = ld->end_batch();
    auto sa = s.accessor<double, 4>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (size_t e = 0; e + 1 < edges.size(); ++e) {
          double mx = -INFINITY, sum = 0;
          int64_t n = 0;
          for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j <= i; ++j) {
              if (i - j < edges[e] || i - j >= edges[e + 1] || !std::isfinite(sa[b][h][i][j])) continue;
              mx = std::max(mx, sa[b][h][i][j]);
              sum += sa[b][h][i][j];
              ++n;
            }
          const int64_t be = static_cast<int64_t>(e);
          EXPECT_EQ(lr[2].data[b][h][be].item<int64_t>(), n);
          EXPECT_NEAR(lr[1].data[b][h][be].item<double>(), sum, 1e-3);
          if (n > 0) EXPECT_NEAR(lr[0].data[b][h][be].item<float>(), mx, 1e-4);
        }
  }
}

// Counts, per (sequence, head, query, key), the tiles in which the logit is finite.
class FiniteCounter : public Observer {
 public:
  explicit FiniteCounter(at::Tensor counts) : counts_(std::move(counts)) {}
  bool wants(Site s, int64_t) const override { return s == Site::kAttnLogits; }
  void observe(const Observation& o) override {
    counts_.narrow(2, o.q_start, o.data.size(2)).narrow(3, o.k_start, o.data.size(3)).add_(at::isfinite(o.data));
  }
  at::Tensor counts_;  // [B, H, T, T] int64
};

// Whatever tiles a variant reports, a visible pair is finite in exactly one, a hidden pair in none.
TEST(FactorObserversUnderVariants, EveryVisiblePairIsFiniteInExactlyOneTile) {
  const int64_t B = 2, H = 4, Hkv = 2, T = 45, D = 8;
  at::manual_seed(5);
  at::Tensor q = at::randn({B, H, T, D}), k = at::randn({B, Hkv, T, D}), v = at::randn({B, Hkv, T, D});
  const RotaryEmbedding rope(D, 10000.0, 2048, RopeScaling{});
  for (const auto& c : variant_cases(BlockwiseOptions{6, 5})) {
    SCOPED_TRACE(c.label);
    auto counter = std::make_shared<FiniteCounter>(at::zeros({B, H, T, T}, at::kLong));
    ObserverSet set;
    set.add(counter);
    AttentionCall call;
    call.q = q;
    call.k = k;
    call.v = v;
    call.rope = &rope;
    call.observers = &set;
    c.make()->forward(call);
    EXPECT_TRUE(at::equal(counter->counts_, c.rule(T).visible.to(at::kLong).expand({B, H, T, T})));
  }
}

}  // namespace
}  // namespace lminf
