// The factor observers against dense references: the blockwise kernel reports its tiles, and the
// observers' tile-by-tile statistics equal those computed from the full T x T logits (float64).
#include <gtest/gtest.h>

#include <cmath>

#include "attention/kernels/blockwise.h"
#include "attention/reference/dense_reference.h"
#include "analysis/factors/attention_entropy.h"
#include "analysis/factors/feature_sample.h"
#include "analysis/factors/logit_distance_stats.h"
#include "analysis/factors/query_logits.h"

namespace lminf {
namespace {

struct Problem {
  int64_t B = 2, H = 4, Hkv = 2, T = 37, D = 8;
  int64_t block_q = 5, block_k = 7;
  std::optional<int64_t> window;
  at::Tensor q, k, v;
  double scale = 0.9;  // > 1/sqrt(D): sharper distributions
};

Problem make_problem(std::optional<int64_t> window = std::nullopt) {
  Problem p;
  p.window = window;
  at::manual_seed(11 + (window ? *window : 0));
  p.q = at::randn({p.B, p.H, p.T, p.D});
  p.k = at::randn({p.B, p.Hkv, p.T, p.D});
  p.v = at::randn({p.B, p.Hkv, p.T, p.D});
  return p;
}

// Dense scaled logits [B, H, T, T] float64 with hidden entries -inf.
at::Tensor dense_logits(const Problem& p) {
  at::Tensor k = p.k.to(at::kDouble).repeat_interleave(p.H / p.Hkv, 1);
  at::Tensor s = at::matmul(p.q.to(at::kDouble), k.transpose(-1, -2)) * p.scale;
  return s.masked_fill(at::logical_not(causal_visibility(p.T, p.T, 0, p.window)), -INFINITY);
}

// Runs the kernel over heads [h0, h0 + n) only (as one tensor-parallel rank would), reporting to `obs`.
void run_kernel(const Problem& p, ObserverSet& obs, int64_t h0, int64_t n, int64_t layer = 3) {
  const int64_t g = p.H / p.Hkv;
  at::Tensor q = p.q.narrow(1, h0, n), k = p.k.narrow(1, h0 / g, n / g), v = p.v.narrow(1, h0 / g, n / g);
  blockwise_causal_attention(q, k, v, 0, p.window, p.scale, {p.block_q, p.block_k}, TileReport{&obs, layer, 0, h0});
}

BatchRows full_rows(const Problem& p) {
  BatchRows r;
  for (int64_t b = 0; b < p.B; ++b) {
    r.sequence.push_back(10 + b);
    r.length.push_back(p.T);
  }
  return r;
}

const FactorRecord& find(const std::vector<FactorRecord>& recs, const std::string& name) {
  for (const auto& r : recs)
    if (r.dataset == name) return r;
  throw std::runtime_error("no record " + name);
}

TEST(AttentionEntropy, TileAccumulatedEqualsDense) {
  for (auto window : {std::optional<int64_t>{}, std::optional<int64_t>{9}}) {
    Problem p = make_problem(window);
    auto obs = std::make_shared<AttentionEntropyObserver>(AttentionEntropyOptions{{{3}, HeadSlots({}, p.H)}, p.T});
    ObserverSet set;
    set.add(obs);
    obs->begin_batch(full_rows(p));
    run_kernel(p, set, 0, p.H);
    auto recs = obs->end_batch();
    at::Tensor s = dense_logits(p);
    at::Tensor logp = at::log_softmax(s, -1);
    at::Tensor want = -at::where(at::isfinite(s), logp.exp() * logp, at::zeros_like(s)).sum(-1);  // [B, H, T]
    const at::Tensor& got = find(recs, "factor2/layer_03/entropy").data;
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LT((got.to(at::kDouble) - want).abs().max().item<double>(), 2e-5);
    at::Tensor visible = at::isfinite(s).sum(-1);
    EXPECT_TRUE(at::equal(find(recs, "factor2/layer_03/visible_keys").data.to(at::kLong), visible));
    EXPECT_TRUE((got.to(at::kDouble) <= visible.to(at::kDouble).log() + 1e-5).all().item<bool>());
  }
}

TEST(AttentionEntropy, PaddingAndUnrecordedRows) {
  Problem p = make_problem();
  auto obs = std::make_shared<AttentionEntropyObserver>(AttentionEntropyOptions{{{3}, HeadSlots({2, 0}, p.H)}, p.T + 3});
  ObserverSet set;
  set.add(obs);
  BatchRows rows;
  rows.sequence = {-1, 5};  // row 0 not recorded
  rows.length = {p.T, 20};  // row 1: positions >= 20 are padding
  obs->begin_batch(rows);
  run_kernel(p, set, 0, p.H);
  auto recs = obs->end_batch();
  const at::Tensor& got = find(recs, "factor2/layer_03/entropy").data;
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{1, 2, p.T + 3}));
  EXPECT_TRUE(at::isfinite(got.narrow(2, 0, 20)).all().item<bool>());
  EXPECT_TRUE(at::isnan(got.narrow(2, 20, p.T + 3 - 20)).all().item<bool>());
  // Slot 0 is head 2 of batch row 1.
  at::Tensor s = dense_logits(p)[1][2].narrow(0, 0, 20);
  at::Tensor logp = at::log_softmax(s, -1);
  at::Tensor want = -at::where(at::isfinite(s), logp.exp() * logp, at::zeros_like(s)).sum(-1);
  EXPECT_LT((got[0][0].narrow(0, 0, 20).to(at::kDouble) - want).abs().max().item<double>(), 2e-5);
}

// Two "ranks" each see half of the heads; their records, summed, equal the one-rank record.
TEST(AttentionEntropy, TensorParallelRecordsCombineBySum) {
  Problem p = make_problem();
  auto make = [&] { return std::make_shared<AttentionEntropyObserver>(AttentionEntropyOptions{{{3}, HeadSlots({}, p.H)}, p.T}); };
  auto whole = make(), r0 = make(), r1 = make();
  ObserverSet s_whole, s0, s1;
  s_whole.add(whole);
  s0.add(r0);
  s1.add(r1);
  for (auto* o : {whole.get(), r0.get(), r1.get()}) o->begin_batch(full_rows(p));
  run_kernel(p, s_whole, 0, 4);
  run_kernel(p, s0, 0, 2);
  run_kernel(p, s1, 2, 2);
  auto a = whole->end_batch(), b0 = r0->end_batch(), b1 = r1->end_batch();
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(b0[i].combine, Combine::kSum);
    EXPECT_TRUE(at::equal(b0[i].data + b1[i].data, a[i].data)) << a[i].dataset;
  }
}

TEST(LogitDistance, BucketMaxMeanCountEqualDense) {
  Problem p = make_problem(int64_t{13});
  const std::vector<int64_t> edges{0, 1, 4, 10, 11, 30};  // distances >= 30 are left out
  const HeadSlots heads({1, 3, 2}, p.H);
  auto obs = std::make_shared<LogitDistanceObserver>(LogitDistanceOptions{{{3}, heads}, edges});
  ObserverSet set;
  set.add(obs);
  BatchRows rows = full_rows(p);
  rows.length[1] = 25;  // padding queries of row 1 are left out
  obs->begin_batch(rows);
  run_kernel(p, set, 0, p.H);
  auto recs = obs->end_batch();
  const at::Tensor mx = find(recs, "factor1/layer_03/bucket_max").data;
  const at::Tensor sm = find(recs, "factor1/layer_03/bucket_sum").data;
  const at::Tensor ct = find(recs, "factor1/layer_03/bucket_count").data;
  ASSERT_EQ(mx.sizes(), (std::vector<int64_t>{2, 3, 5}));
  at::Tensor s = dense_logits(p);
  auto sa = s.accessor<double, 4>();
  for (int64_t b = 0; b < p.B; ++b) {
    for (int64_t slot = 0; slot < 3; ++slot) {
      const int64_t h = heads.heads()[static_cast<size_t>(slot)];
      for (size_t bi = 0; bi + 1 < edges.size(); ++bi) {
        double want_max = -INFINITY, want_sum = 0;
        int64_t want_count = 0;
        for (int64_t i = 0; i < rows.length[static_cast<size_t>(b)]; ++i)
          for (int64_t j = 0; j <= i; ++j) {
            const int64_t d = i - j;
            if (d < edges[bi] || d >= edges[bi + 1] || !std::isfinite(sa[b][h][i][j])) continue;
            want_max = std::max(want_max, sa[b][h][i][j]);
            want_sum += sa[b][h][i][j];
            ++want_count;
          }
        const int64_t bb = static_cast<int64_t>(bi);
        EXPECT_EQ(ct[b][slot][bb].item<int64_t>(), want_count) << b << " " << h << " " << bi;
        EXPECT_NEAR(sm[b][slot][bb].item<double>(), want_sum, 1e-4);
        if (want_count == 0) EXPECT_TRUE(std::isinf(mx[b][slot][bb].item<float>()));
        else EXPECT_NEAR(mx[b][slot][bb].item<float>(), want_max, 1e-5);
      }
    }
  }
  // Over the run: the maximum and the token-weighted mean.
  auto fin = obs->finish();
  EXPECT_TRUE(at::allclose(find(fin, "factor1/layer_03/run_max").data, std::get<0>(mx.max(0))));
  at::Tensor mean = sm.sum(0) / ct.sum(0).to(at::kDouble);
  const at::Tensor run_mean = find(fin, "factor1/layer_03/run_mean").data;
  EXPECT_TRUE(at::allclose(run_mean.masked_select(at::isfinite(mean)), mean.masked_select(at::isfinite(mean))));
}

TEST(LogitDistance, UniformEdges) {
  EXPECT_EQ(uniform_distance_edges(64, 128), (std::vector<int64_t>{0, 64, 128}));
  EXPECT_EQ(uniform_distance_edges(64, 129), (std::vector<int64_t>{0, 64, 128, 192}));
  EXPECT_EQ(uniform_distance_edges(10, 1), (std::vector<int64_t>{0, 10}));
}

TEST(QueryLogits, ChosenRowsEqualDenseLogits) {
  EXPECT_EQ(chosen_queries(10, 0), (std::vector<int64_t>{9}));
  EXPECT_EQ(chosen_queries(10, 4), (std::vector<int64_t>{3, 7, 9}));
  EXPECT_EQ(chosen_queries(8, 4), (std::vector<int64_t>{3, 7}));
  Problem p = make_problem(int64_t{6});
  const HeadSlots heads({3, 0}, p.H);
  auto obs = std::make_shared<QueryLogitsObserver>(QueryLogitsOptions{{{3}, heads}, p.T, 10});
  ObserverSet set;
  set.add(obs);
  BatchRows rows = full_rows(p);
  rows.length[0] = 21;
  obs->begin_batch(rows);
  run_kernel(p, set, 0, p.H);
  auto recs = obs->end_batch();
  const at::Tensor seq = find(recs, "factor1/query_sequence").data;
  const at::Tensor pos = find(recs, "factor1/query_position").data;
  EXPECT_TRUE(at::equal(pos, at::tensor({9, 19, 20, 9, 19, 29, 36}, at::kLong)));
  EXPECT_TRUE(at::equal(seq, at::tensor({10, 10, 10, 11, 11, 11, 11}, at::kLong)));
  const at::Tensor got = find(recs, "factor1/layer_03/query_logits").data;  // [7, 2, T]
  at::Tensor s = dense_logits(p);
  for (int64_t r = 0; r < pos.size(0); ++r) {
    const int64_t b = seq[r].item<int64_t>() - 10, qp = pos[r].item<int64_t>();
    for (int64_t slot = 0; slot < 2; ++slot) {
      at::Tensor want = s[b][heads.heads()[static_cast<size_t>(slot)]][qp].narrow(0, 0, qp + 1);  // -inf outside the window
      at::Tensor g = got[r][slot];
      at::Tensor head = g.narrow(0, 0, qp + 1).to(at::kDouble);
      EXPECT_TRUE(at::equal(at::isfinite(head), at::isfinite(want)));
      EXPECT_LT((head - want).masked_select(at::isfinite(want)).abs().max().item<double>(), 1e-5);
      EXPECT_TRUE(at::isnan(g.narrow(0, qp + 1, p.T - qp - 1)).all().item<bool>());
    }
  }
}

TEST(FeatureSample, SampledPositionsAcrossCalls) {
  EXPECT_EQ(sampled_positions(10, 3, 4), (std::vector<int64_t>{0, 1, 2, 3, 7}));
  EXPECT_EQ(sampled_positions(2, 3, 4), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(sampled_positions(10, 2, 0), (std::vector<int64_t>{0, 1}));
  FeatureSampleOptions o;
  o.hidden_states = {2};
  o.layers = {1};
  o.heads = HeadSlots({3, 1}, 4);
  o.kv_heads = HeadSlots({1}, 2);
  o.first = 3;
  o.stride = 4;
  o.hidden_size = 6;
  o.head_dim = 5;
  FeatureSampleObserver obs(o);
  EXPECT_TRUE(obs.wants(Site::kHidden, 1));  // hidden_states[2] = after block 1
  EXPECT_FALSE(obs.wants(Site::kHidden, 2));
  EXPECT_TRUE(obs.wants(Site::kQuery, 1));
  EXPECT_FALSE(obs.wants(Site::kAttnLogits, 1));
  BatchRows rows;
  rows.sequence = {4, 7};
  rows.length = {12, 5};
  obs.begin_batch(rows);
  at::manual_seed(3);
  // Two forward calls of 8 and 4 tokens (a cached continuation), as a streaming task would feed them.
  at::Tensor hidden = at::randn({2, 12, 6}), query = at::randn({2, 4, 12, 5}), key = at::randn({2, 2, 12, 5});
  for (auto [t0, n] : {std::pair<int64_t, int64_t>{0, 8}, {8, 4}}) {
    obs.observe({Site::kHidden, 1, hidden.narrow(1, t0, n), t0, 0, 0});
    obs.observe({Site::kQuery, 1, query.narrow(2, t0, n).narrow(1, 0, 2), t0, 0, 0});  // "rank 0": heads 0-1
    obs.observe({Site::kQuery, 1, query.narrow(2, t0, n).narrow(1, 2, 2), t0, 0, 2});  // "rank 1": heads 2-3
    obs.observe({Site::kKey, 1, key.narrow(2, t0, n), t0, 0, 0});
  }
  auto recs = obs.end_batch();
  const at::Tensor pos = find(recs, "factor3/sample_position").data;
  EXPECT_TRUE(at::equal(pos, at::tensor({0, 1, 2, 3, 7, 11, 0, 1, 2, 3}, at::kLong)));
  const at::Tensor hs = find(recs, "factor3/hidden/hs_02").data;
  const at::Tensor q = find(recs, "factor3/query/layer_01").data;
  const at::Tensor k = find(recs, "factor3/key/layer_01").data;
  const at::Tensor attn = find(recs, "factor3/attn_out/layer_01").data;
  const at::Tensor seq = find(recs, "factor3/sample_sequence").data;
  for (int64_t r = 0; r < pos.size(0); ++r) {
    const int64_t b = seq[r].item<int64_t>() == 4 ? 0 : 1, t = pos[r].item<int64_t>();
    EXPECT_TRUE(at::equal(hs[r], hidden[b][t]));
    EXPECT_TRUE(at::equal(q[r][0], query[b][3][t]));
    EXPECT_TRUE(at::equal(q[r][1], query[b][1][t]));
    EXPECT_TRUE(at::equal(k[r][0], key[b][1][t]));
  }
  EXPECT_TRUE(at::isinf(attn).all().item<bool>());  // never observed: the identity of the max combine
}

// A run without observers that want tiles never gets one: the kernel asks once per call and skips
// building observations.
class CountingObserver : public Observer {
 public:
  mutable int wants_calls = 0;
  int observed = 0;
  bool wants(Site s, int64_t) const override {
    ++wants_calls;
    return s == Site::kHidden;
  }
  void observe(const Observation&) override { ++observed; }
};

TEST(Observers, KernelSkipsTilesNobodyWants) {
  Problem p = make_problem();
  auto counter = std::make_shared<CountingObserver>();
  ObserverSet set;
  set.add(counter);
  at::Tensor with = blockwise_causal_attention(p.q, p.k, p.v, 0, std::nullopt, p.scale, {p.block_q, p.block_k},
                                               TileReport{&set, 0, 0, 0});
  EXPECT_EQ(counter->wants_calls, 1);  // one question per kernel call, not one per tile
  EXPECT_EQ(counter->observed, 0);
  at::Tensor without = blockwise_causal_attention(p.q, p.k, p.v, 0, std::nullopt, p.scale, {p.block_q, p.block_k});
  EXPECT_TRUE(at::equal(with, without));
}

}  // namespace
}  // namespace lminf

namespace lminf {
namespace {

// Two-branch kernels report a key in a far tile and a near tile, finite in exactly one of them; the
// chosen-query row keeps the finite logit whatever the order, and the entropy counts it once.
TEST(QueryLogits, KeyRepeatedAcrossTilesKeepsTheFiniteLogit) {
  auto ql = std::make_shared<QueryLogitsObserver>(QueryLogitsOptions{{{0}, HeadSlots({}, 1)}, 4, 0});
  auto ent = std::make_shared<AttentionEntropyObserver>(AttentionEntropyOptions{{{0}, HeadSlots({}, 1)}, 4});
  BatchRows rows;
  rows.sequence = {0};
  rows.length = {4};
  ql->begin_batch(rows);
  ent->begin_batch(rows);
  const float inf = INFINITY;
  // Query 3 against keys 0..3: far tile (keys 0, 1) then near tile (keys 1..3) masking key 1.
  at::Tensor far = at::tensor({2.f, 1.f}).view({1, 1, 1, 2});
  at::Tensor near = at::tensor({-inf, 0.5f, 3.f}).view({1, 1, 1, 3});
  for (FactorObserver* o : {static_cast<FactorObserver*>(ql.get()), static_cast<FactorObserver*>(ent.get())}) {
    o->observe({Site::kAttnLogits, 0, far, 3, 0, 0});
    o->observe({Site::kAttnLogits, 0, near, 3, 1, 0});
  }
  const at::Tensor got = find(ql->end_batch(), "factor1/layer_00/query_logits").data;
  EXPECT_TRUE(at::equal(got[0][0], at::tensor({2.f, 1.f, 0.5f, 3.f})));
  const at::Tensor e = find(ent->end_batch(), "factor2/layer_00/entropy").data;
  at::Tensor p = at::softmax(at::tensor({2.0, 1.0, 0.5, 3.0}, at::kDouble), 0);
  EXPECT_NEAR(e[0][0][3].item<float>(), -(p * p.log()).sum().item<double>(), 1e-6);
}

}  // namespace
}  // namespace lminf
