// InfLLM (attention/variants/infllm.h) against its float64 rule (infllm_rule,
// attention/reference/rule_reference.h) at the sizes where its rule changes: T below, at and just past
// the local window, at chunk boundaries, where the first memory block forms and where retrieval has to
// choose; batch > 1, grouped-query heads, the three position encodings, prefill and calls continuing
// a cache. A prefill equals calls of exc_block_size queries; observer tiles hold each visible pair once.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "attention/reference/rule_reference.h"
#include "attention/variants/infllm.h"
#include "framework/transformer/alibi.h"

namespace lminf {
namespace {

InfLLMParams params(int64_t n_local, int64_t n_init, int64_t block, int64_t topk, int64_t repr_topk, int64_t exc,
                    bool perhead) {
  InfLLMParams p;
  p.n_local = n_local;
  p.n_init = n_init;
  p.memory_block_size = block;
  p.topk = topk;
  p.repr_topk = repr_topk;
  p.exc_block_size = exc;
  p.perhead = perhead;
  return p;
}

InfLLMRuleSizes sizes_of(const InfLLMParams& p) {
  return {p.n_init, p.n_local, p.memory_block_size, p.topk, p.repr_topk, p.exc_block_size, p.perhead};
}

// Sequences pass the window (6), chunk boundaries (multiples of 4), the first block (c0 = 11) and
// retrieval choosing 2 of up to 6 blocks; the second: no sinks, per-head retrieval of 1 of up to 5.
const InfLLMParams kSequence = params(6, 2, 3, 2, 2, 4, false);
const InfLLMParams kPerHead = params(5, 0, 4, 1, 3, 5, true);

enum class Encoding { kRotateHalf, kInterleavedPartial, kAlibi };

struct Stream {
  at::Tensor q, k, v;  // [B, H, T, D], [B, Hkv, T, D] x2, pre-encoding
  RotaryEmbedding rope;
  at::Tensor slopes;  // [H] for ALiBi
  Stream(Encoding e, int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t D, at::ScalarType dt, uint64_t seed)
      : rope(e == Encoding::kInterleavedPartial ? D - 2 : D, 10000.0, 2048, RopeScaling{},
             e == Encoding::kInterleavedPartial ? RopeLayout::kInterleaved : RopeLayout::kHalf) {
    at::manual_seed(seed);
    q = (at::randn({B, H, T, D}, at::kDouble) * 0.7).to(dt);  // neither a flat nor a one-hot softmax
    k = (at::randn({B, Hkv, T, D}, at::kDouble) * 0.7).to(dt);
    v = at::randn({B, Hkv, T, D}, at::kDouble).to(dt);
    if (e == Encoding::kAlibi) slopes = alibi_slopes(H, 8.0);
  }
  RuleEncoding encoding() const { return slopes.defined() ? RuleEncoding::alibi(slopes) : RuleEncoding(rope); }
  // The variant on queries [K - n, K) of the first K keys.
  at::Tensor run(const AttentionVariant& variant, int64_t K, int64_t n, const ObserverSet* obs = nullptr) const {
    AttentionCall call;
    call.q = q.narrow(2, K - n, n);
    call.k = k.narrow(2, 0, K);
    call.v = v.narrow(2, 0, K);
    call.q_offset = call.abs_q_start = K - n;
    if (slopes.defined()) call.alibi_slopes = slopes;
    else call.rope = &rope;
    call.observers = obs;
    return variant.forward(call);
  }
  AttentionRule rule(const InfLLMParams& p, int64_t K, int64_t n) const {
    return infllm_rule(q.narrow(2, K - n, n), k.narrow(2, 0, K), K - n, sizes_of(p), encoding(), K, scale());
  }
  at::Tensor reference(const InfLLMParams& p, int64_t K, int64_t n) const {
    return rule_attention_reference(q.narrow(2, K - n, n), k.narrow(2, 0, K), v.narrow(2, 0, K), rule(p, K, n),
                                    encoding(), K, scale());
  }
  double scale() const { return 1.0 / std::sqrt(static_cast<double>(q.size(3))); }
};

double max_err(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want).abs().max().item<double>();
}

// Float64: rounding only. Float32: rotations and softmax round at ~1e-7 relative on O(1) outputs.
double tolerance(at::ScalarType dt) { return dt == at::kDouble ? 1e-10 : 5e-5; }

TEST(InfLLM, MatchesItsRuleAtAwkwardSizes) {
  const BlockwiseOptions tiles{5, 7};
  for (const InfLLMParams& p : {kSequence, kPerHead}) {
    const InfLLMAttention variant(p, tiles);
    for (Encoding e : {Encoding::kRotateHalf, Encoding::kInterleavedPartial, Encoding::kAlibi}) {
      for (at::ScalarType dt : {at::kDouble, at::kFloat}) {
        // GQA with 3 query heads per kv head over 3 sequences; plain multi-head attention.
        for (const auto& [H, Hkv] : {std::pair<int64_t, int64_t>{6, 2}, {2, 2}}) {
          const Stream s(e, 3, H, Hkv, 31, 8, dt, 5 + static_cast<uint64_t>(H));
          for (int64_t T : {4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17, 21, 22, 27, 31}) {
            // The whole prefix as one prefill, and its last 5 queries as a call continuing a cache.
            for (int64_t n : {T, std::min<int64_t>(T, 5)}) {
              EXPECT_LT(max_err(s.run(variant, T, n), s.reference(p, T, n)), tolerance(dt))
                  << "n_local " << p.n_local << " perhead " << p.perhead << " encoding " << int(e) << " H " << H
                  << " T " << T << " queries " << n << " " << at::toString(dt);
            }
          }
        }
      }
    }
  }
}

// The tests above decide something: at the longest sequence retrieval leaves some memory keys out
// and takes others, and the unblocked tail is seen.
TEST(InfLLM, RetrievalChoosesAtTheLongestSequence) {
  for (const InfLLMParams& p : {kSequence, kPerHead}) {
    const Stream s(Encoding::kRotateHalf, 3, 6, 2, 31, 8, at::kDouble, 11);
    const AttentionRule r = s.rule(p, 31, 31);
    const at::Tensor far = r.effective_distance() == p.n_local - 1;
    const int64_t p_last = 30;
    int64_t hidden = 0, seen = 0;
    for (int64_t j = p.n_init; j <= p_last - p.n_local; ++j) {
      const bool vis = r.visible[0][0][p_last][j].item<bool>();
      hidden += !vis;
      seen += vis && far[0][0][p_last][j].item<bool>();
    }
    EXPECT_GT(hidden, 0) << "n_local " << p.n_local;
    EXPECT_GT(seen, p.memory_block_size) << "n_local " << p.n_local;
  }
}

// One prefill equals feeding the same tokens in calls of exc_block_size queries, each seeing the
// cache so far: retrieval is per chunk, counted from each call's first query.
TEST(InfLLM, PrefillEqualsCallsOfTheChunkSize) {
  for (const InfLLMParams& p : {kSequence, kPerHead, params(7, 3, 2, 1, 1, 1, true)}) {
    const InfLLMAttention variant(p, BlockwiseOptions{4, 6});
    for (Encoding e : {Encoding::kRotateHalf, Encoding::kAlibi}) {
      const Stream s(e, 2, 4, 2, 29, 8, at::kDouble, 3);
      const at::Tensor whole = s.run(variant, 29, 29);
      for (int64_t fed = 0; fed < 29; fed += p.exc_block_size) {
        const int64_t n = std::min(p.exc_block_size, 29 - fed);
        EXPECT_LT(max_err(s.run(variant, fed + n, n), whole.narrow(2, fed, n)), 1e-12)
            << "exc_block_size " << p.exc_block_size << " fed " << fed;
      }
    }
  }
}

// Tiles reassembled per absolute (query, key) pair: the finite logits a tile reports, and how often.
class TileCollector : public Observer {
 public:
  TileCollector(int64_t B, int64_t H, int64_t K)
      : full(at::full({B, H, K, K}, -INFINITY, at::kDouble)), count(at::zeros({B, H, K, K}, at::kLong)) {}
  at::Tensor full, count;
  bool wants(Site s, int64_t) const override { return s == Site::kAttnLogits; }
  void observe(const Observation& o) override {
    at::Tensor dst = full.narrow(2, o.q_start, o.data.size(2)).narrow(3, o.k_start, o.data.size(3));
    at::Tensor finite = at::isfinite(o.data);
    dst.copy_(at::where(finite, o.data.to(at::kDouble), dst));
    count.narrow(2, o.q_start, o.data.size(2)).narrow(3, o.k_start, o.data.size(3)).add_(finite.to(at::kLong));
  }
};

TEST(InfLLM, ObserversSeeEachVisiblePairOnceWithItsLogit) {
  for (const InfLLMParams& p : {kSequence, kPerHead}) {
    for (Encoding e : {Encoding::kRotateHalf, Encoding::kAlibi}) {
      const Stream s(e, 2, 6, 2, 27, 8, at::kDouble, 7);
      for (int64_t n : {27, 6}) {  // a prefill, and a call continuing a cache of 21
        auto tiles = std::make_shared<TileCollector>(2, 6, 27);
        ObserverSet obs;
        obs.add(tiles);
        s.run(InfLLMAttention(p, BlockwiseOptions{4, 5}), 27, n, &obs);
        const AttentionRule r = s.rule(p, 27, n);
        const at::Tensor want = rule_logits(s.q.narrow(2, 27 - n, n), s.k, r, s.encoding(), 27, s.scale());
        const at::Tensor got = tiles->full.narrow(2, 27 - n, n), count = tiles->count.narrow(2, 27 - n, n);
        EXPECT_TRUE(at::equal(count, r.visible.to(at::kLong))) << "each visible pair in exactly one tile, n " << n;
        EXPECT_LT((got.masked_select(r.visible) - want.masked_select(r.visible)).abs().max().item<double>(), 1e-10);
      }
    }
  }
}

TEST(InfLLM, InvalidValuesAndModelsAreReportedWithTheKey) {
  const std::vector<std::string> bad = params(1, -1, 0, 0, 2, 3, false).problems();
  for (const char* key : {"n_local", "n_init", "memory_block_size", "topk", "repr_topk", "exc_block_size"}) {
    bool named = false;
    for (const auto& m : bad) named |= m.find(std::string("attention.") + key + "=") != std::string::npos;
    EXPECT_TRUE(named) << key;
  }
  EXPECT_TRUE(kSequence.problems().empty());
  ModelConfig model;
  model.n_layer = 2;
  const auto tp = InfLLMAttention(kSequence, {}).model_problems(model, 2);
  ASSERT_EQ(tp.size(), 1u);
  EXPECT_NE(tp[0].find("does not support tensor parallelism"), std::string::npos) << tp[0];
  EXPECT_NE(tp[0].find("attention.perhead: true"), std::string::npos) << tp[0];
  EXPECT_TRUE(InfLLMAttention(kPerHead, {}).model_problems(model, 2).empty());
  model.sliding_window = 4;
  const auto sw = InfLLMAttention(kPerHead, {}).model_problems(model, 1);
  ASSERT_EQ(sw.size(), 1u);
  EXPECT_NE(sw[0].find("attention.n_local=5"), std::string::npos) << sw[0];
}

}  // namespace
}  // namespace lminf
