// The evicting KV-cache policies (attention.cache: h2o, snapkv) laid over the variants, call by call,
// against a float64 reference that applies each published rule plainly: it keeps, per (sequence, kv
// head), an explicit list of the tokens kept (renumbered 0..n-1 in stream order, as lminf does),
// computes the dense probabilities of the variant's rule over exactly those keys, the scores (H2O:
// every query's probabilities accumulated; SnapKV: the observation window's votes, pooled), the
// kept set, and attention over the kept keys. Prompts below, at and just past the capacity, then
// decoding; chunked streams; GQA (2 query heads per kv head); batch 2; rotary and ALiBi; float64 and
// float32.
//
// Top-k choices are discontinuous: a kept set is compared only where the reference's k-th and
// (k+1)-th scores are further apart than the scores' rounding (derived below); elsewhere the
// reference takes lminf's choice (both are right) and the count of such ties is reported.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "attention/reference/variant_rules.h"
#include "attention/registry.h"
#include "framework/transformer/alibi.h"
#include "framework/transformer/kv_eviction.h"
#include "framework/transformer/rope.h"

namespace lminf {
namespace {

constexpr int64_t kB = 2, kH = 4, kHkv = 2, kD = 8, kG = kH / kHkv;

struct Stats {
  int64_t checked = 0, ties = 0, pooled_ties = 0;  // decided; within rounding; equal pooled votes
};

// The tokens of each (sequence, kv head) in cache order, read back from a lminf cache by matching
// its keys with the stream's keys k_all [B, Hkv, N, D] (random: every row is unique).
std::vector<std::vector<std::vector<int64_t>>> tokens_in(const LayerCache& c, const at::Tensor& k_all) {
  std::vector<std::vector<std::vector<int64_t>>> out(kB, std::vector<std::vector<int64_t>>(kHkv));
  for (int64_t b = 0; b < kB; ++b)
    for (int64_t h = 0; h < kHkv; ++h) {
      at::Tensor eq = (c.keys()[b][h].unsqueeze(1) == k_all[b][h].unsqueeze(0)).all(-1);  // [K, N]
      EXPECT_TRUE(eq.any(1).all().item<bool>()) << "a cached key is no token of the stream";
      at::Tensor id = eq.to(at::kInt).argmax(1);
      for (int64_t j = 0; j < id.size(0); ++j) out[b][h].push_back(id[j].item<int64_t>());
    }
  return out;
}

// H2O and SnapKV written out: explicit kept lists and scores.
class PlainPolicy {
 public:
  PlainPolicy(const CacheSpec& s, int64_t n_head)
      : s_(s), n_head_(n_head), kept_(kB, std::vector<std::vector<int64_t>>(kHkv)),
        score_(kB, std::vector<std::vector<double>>(kHkv, std::vector<double>(512, 0.0))) {}

  void append(int64_t t0, int64_t n) {
    for (auto& row : kept_)
      for (auto& ks : row)
        for (int64_t i = 0; i < n; ++i) ks.push_back(t0 + i);
  }
  // x_all [B, Hkv, N, D] -> the kept entries [B, Hkv, K, D].
  at::Tensor gather(const at::Tensor& x_all) const {
    std::vector<at::Tensor> rows;
    for (int64_t b = 0; b < kB; ++b) {
      std::vector<at::Tensor> heads;
      for (int64_t h = 0; h < kHkv; ++h) heads.push_back(x_all[b][h].index_select(0, at::tensor(kept_[b][h], at::kLong)));
      rows.push_back(at::stack(heads));
    }
    return at::stack(rows);
  }
  // After a call of Tq queries with dense probabilities p [B, H, Tq, K]: scores, then the kept sets
  // (where the rule is decided by more than `tol`; else lminf's choice `got`).
  void trim(const at::Tensor& p, int64_t Tq, double tol, const std::vector<std::vector<std::vector<int64_t>>>& got,
            Stats& st) {
    const int64_t K = p.size(3);
    const bool h2o = s_.policy == "h2o";
    const int64_t rows = h2o ? Tq : s_.window_size;
    const bool evicts = h2o ? K > n_head_ + s_.hh_size + s_.recent_size
                            : Tq >= s_.window_size && K > n_head_ + s_.max_capacity_prompt;
    if (!h2o && !evicts) return;
    at::Tensor mass = p.view({kB, kHkv, kG, Tq, K}).narrow(3, Tq - rows, rows).sum({2, 3});  // [B, Hkv, K]
    for (int64_t b = 0; b < kB; ++b)
      for (int64_t h = 0; h < kHkv; ++h) {
        auto& ks = kept_[b][h];
        std::vector<double> m(static_cast<size_t>(K));
        for (int64_t j = 0; j < K; ++j) m[j] = mass[b][h][j].item<double>();
        if (h2o)
          for (int64_t j = 0; j < K; ++j) score_[b][h][ks[j]] += m[j];
        if (!evicts) continue;
        const int64_t tail = h2o ? s_.recent_size : s_.window_size;
        const int64_t keep = h2o ? s_.hh_size : s_.max_capacity_prompt - s_.window_size;
        std::vector<double> cand;
        for (int64_t j = n_head_; j < K - tail; ++j) cand.push_back(h2o ? score_[b][h][ks[j]] : m[j]);
        if (!h2o) cand = pool(cand);
        std::vector<int64_t> order(cand.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return cand[x] > cand[y]; });
        if (keep < static_cast<int64_t>(cand.size()) && cand[order[keep - 1]] - cand[order[keep]] <= tol) {
          // Within rounding, or an exact tie (maxpool repeats a maximum over neighbouring keys):
          // lminf's choice must be a top-k up to tol; adopted.
          ++(cand[order[keep - 1]] == cand[order[keep]] ? st.pooled_ties : st.ties);
          for (int64_t j = 0; j < static_cast<int64_t>(cand.size()); ++j)
            if (std::find(got[b][h].begin(), got[b][h].end(), ks[n_head_ + j]) != got[b][h].end())
              EXPECT_GE(cand[j], cand[order[keep - 1]] - tol) << "a kept key that is not among the top " << keep;
          ks = got[b][h];
          continue;
        }
        ++st.checked;
        std::vector<int64_t> top(order.begin(), order.begin() + keep);
        std::sort(top.begin(), top.end());
        std::vector<int64_t> next(ks.begin(), ks.begin() + n_head_);
        for (int64_t j : top) next.push_back(ks[n_head_ + j]);
        next.insert(next.end(), ks.end() - tail, ks.end());
        ks = next;
      }
  }
  const std::vector<std::vector<std::vector<int64_t>>>& kept() const { return kept_; }

 private:
  // SnapKV's pooling, stride 1, padded by kernel_size / 2: the mean with the zero padding counted,
  // or the max of the entries present.
  std::vector<double> pool(const std::vector<double>& x) const {
    const int64_t n = static_cast<int64_t>(x.size()), r = s_.kernel_size / 2;
    std::vector<double> out(x.size());
    for (int64_t i = 0; i < n; ++i) {
      double acc = s_.pooling == "maxpool" ? -INFINITY : 0.0;
      for (int64_t j = std::max<int64_t>(0, i - r); j <= std::min(n - 1, i + r); ++j)
        acc = s_.pooling == "maxpool" ? std::max(acc, x[j]) : acc + x[j];
      out[i] = s_.pooling == "maxpool" ? acc : acc / static_cast<double>(s_.kernel_size);
    }
    return out;
  }

  CacheSpec s_;
  int64_t n_head_;
  std::vector<std::vector<std::vector<int64_t>>> kept_;   // [B][Hkv] tokens in cache order
  std::vector<std::vector<std::vector<double>>> score_;   // H2O: [B][Hkv][token] accumulated mass
};

struct PolicyCase {
  std::string attention;           // the whole attention section
  std::vector<std::vector<int64_t>> schedules;  // call sizes; the last repeats until the stream ends
};

void PrintTo(const PolicyCase& c, std::ostream* os) { *os << c.attention; }

std::vector<PolicyCase> policy_cases() {
  const std::string h2o = "cache: {policy: h2o, hh_size: 3, recent_size: 4}";
  const std::string snap = "cache: {policy: snapkv, window_size: 3, max_capacity_prompt: 8, kernel_size: 3}";
  // Capacities: h2o 7, snapkv 8 (plus the variant's first G / sinks). Prompts below, at, just past.
  return {
      {"{variant: vanilla, block_size: 4, key_block_size: 5, " + h2o + "}", {{5, 1}, {7, 1}, {8, 1}, {6, 6, 5}}},
      {"{variant: vanilla, " + snap + "}", {{7, 1}, {8, 1}, {9, 1}, {20, 1}, {5}}},
      {"{variant: vanilla, cache: {policy: snapkv, window_size: 4, max_capacity_prompt: 9, kernel_size: 5, "
       "pooling: maxpool}}",
       {{13, 1}, {4}}},
      {"{variant: lambda, local_branch: 12, global_branch: 2, block_size: 5, key_block_size: 7, " + h2o + "}",
       {{9, 1}, {10, 1, 9, 1}, {6}}},
      {"{variant: lambda, local_branch: 9, global_branch: 3, limit_distance: null, " + snap + "}", {{11, 1}, {4}}},
      {"{variant: streaming, start_size: 2, recent_size: 10, block_size: 4, " + snap + "}", {{10, 1}, {11, 1}, {6}}},
      {"{variant: streaming, start_size: 1, recent_size: 8, " + h2o + "}", {{8, 1}, {3, 5}}},
      {"{variant: distance_limit, limit_distance: 6, triangle_offset: 0.2, local_branch: 4, global_branch: 1, " +
           h2o + "}",
       {{8, 1}, {4}}},
  };
}

// Float64: rounding only. Float32: outputs O(1) to a few hundred ulp; a score sums at most
// g * (tokens fed) probabilities, each good to ~64 ulp relative.
double out_tolerance(at::ScalarType dt) { return dt == at::kDouble ? 1e-10 : 5e-5; }
double score_tolerance(at::ScalarType dt, int64_t n_fed) {
  const double eps = dt == at::kDouble ? 2.2e-16 : 1.2e-7;
  return 64.0 * eps * static_cast<double>(kG * n_fed);
}

class CachePolicyOverVariant : public ::testing::TestWithParam<PolicyCase> {};

TEST_P(CachePolicyOverVariant, EqualsThePlainRuleCallByCall) {
  const AttentionSpec spec = AttentionSpec::parse(GetParam().attention);
  ASSERT_TRUE(attention_spec_problems(spec).empty()) << attention_spec_problems(spec)[0];
  auto variant = make_attention(spec);
  auto policy = variant->cache_policy();
  const std::shared_ptr<const CachePolicy> own = find_attention_variant(spec.variant)->make(spec)->cache_policy();
  const auto* head_tail = dynamic_cast<const HeadTailPolicy*>(own.get());
  const int64_t n_head = head_tail ? head_tail->n_head() : 0, N = 40;
  RotaryEmbedding rope(kD, 10000.0, 2048, RopeScaling{}, RopeLayout::kHalf);
  const RuleEncoding rotary(rope), alibi = RuleEncoding::alibi(alibi_slopes(kH, 8.0));
  Stats st;
  for (at::ScalarType dt : {at::kDouble, at::kFloat})
    for (bool use_alibi : {false, true})
      for (const auto& schedule : GetParam().schedules) {
        at::manual_seed(7 + static_cast<uint64_t>(schedule[0]));
        const at::Tensor q_all = (at::randn({kB, kH, N, kD}, at::kDouble) * 0.9).to(dt).to(at::kDouble);
        const at::Tensor k_all = (at::randn({kB, kHkv, N, kD}, at::kDouble) * 0.9).to(dt).to(at::kDouble);
        const at::Tensor v_all = at::randn({kB, kHkv, N, kD}, at::kDouble).to(dt).to(at::kDouble);
        const RuleEncoding& enc = use_alibi ? alibi : rotary;
        LayerCache cache;
        PlainPolicy plain(spec.cache, n_head);
        for (int64_t fed = 0, c = 0; fed < N; ++c) {
          const int64_t n = std::min(schedule[std::min<size_t>(c, schedule.size() - 1)], N - fed);
          const std::string where = GetParam().attention + (use_alibi ? " alibi " : " rotary ") + at::toString(dt) +
                                    " schedule from " + std::to_string(schedule[0]) + ", at " + std::to_string(fed);
          cache.append(k_all.narrow(2, fed, n).to(dt), v_all.narrow(2, fed, n).to(dt));
          plain.append(fed, n);
          const int64_t K = cache.size();
          KeyMass mass{policy->mass_rows(n, K), at::Tensor()};
          AttentionCall call;
          call.q = q_all.narrow(2, fed, n).to(dt);
          call.k = cache.keys(), call.v = cache.values();
          call.q_offset = K - n, call.abs_q_start = fed, call.layer = 1;
          if (use_alibi) call.alibi_slopes = enc.alibi_slopes;
          else call.rope = &rope;
          call.key_mass = mass.rows > 0 ? &mass : nullptr;
          const at::Tensor got = variant->forward(call);
          policy->trim(cache, mass);
          // The reference: the rule over exactly the keys it kept, renumbered.
          const at::Tensor q = q_all.narrow(2, fed, n), k = plain.gather(k_all), v = plain.gather(v_all);
          ASSERT_EQ(k.size(2), K) << where;
          RuleCall rc{q, k, K - n, 1, &enc, K, 1.0 / std::sqrt(static_cast<double>(kD))};
          const at::Tensor p = at::softmax(rule_logits(q, k, (*variant_rule(spec.variant))(spec, rc), enc, K, rc.scale), -1);
          EXPECT_LT((got.to(at::kDouble) - at::matmul(p, v.repeat_interleave(kG, 1))).abs().max().item<double>(),
                    out_tolerance(dt)) << where;
          const auto lminf_kept = tokens_in(cache, k_all.to(dt));
          plain.trim(p, n, score_tolerance(dt, fed + n), lminf_kept, st);
          ASSERT_EQ(lminf_kept, plain.kept()) << where;
          if (policy->max_size_for_chunks(n) >= 0) EXPECT_LE(cache.size(), policy->max_size_for_chunks(n)) << where;
          fed += n;
        }
      }
  EXPECT_GT(st.checked, 0) << "no eviction was decided by a clear margin";
  EXPECT_LE(st.ties * 10, st.checked) << "too many choices within rounding to be a test";
  std::printf("[ %s ] %ld evictions compared, %ld within rounding, %ld exact maxpool ties\n",
              GetParam().attention.c_str(), static_cast<long>(st.checked), static_cast<long>(st.ties),
              static_cast<long>(st.pooled_ties));
}

INSTANTIATE_TEST_SUITE_P(Policies, CachePolicyOverVariant, ::testing::ValuesIn(policy_cases()));

}  // namespace
}  // namespace lminf
