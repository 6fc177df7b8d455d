// The eviction policies (framework/transformer/kv_eviction.h) against their published rules written
// out with plain loops over float64 scores: H2O's accumulated mass and heavy-hitter choice, SnapKV's
// pooled votes and choice, per (sequence, kv head), with the protected first entries; and the cache
// buffers they act on (per-head gathers, scores moving with their entries, flat memory).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <tuple>
#include <vector>

#include "framework/transformer/kv_cache.h"
#include "framework/transformer/kv_eviction.h"

namespace lminf {
namespace {

// Cache entry e of (b, h) carries key value id = 1000 * (b * Hkv + h) + token, so kept sets can be
// read back from the keys.
at::Tensor token_keys(int64_t B, int64_t Hkv, int64_t t0, int64_t n) {
  at::Tensor k = at::empty({B, Hkv, n, 1}, at::kDouble);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t i = 0; i < n; ++i) k[b][h][i][0] = 1000.0 * static_cast<double>(b * Hkv + h) + static_cast<double>(t0 + i);
  return k;
}

std::vector<int64_t> kept_tokens(const LayerCache& c, int64_t b, int64_t h, int64_t Hkv) {
  std::vector<int64_t> out;
  at::Tensor k = c.keys()[b][h].reshape({-1}).contiguous();
  for (int64_t i = 0; i < k.size(0); ++i)
    out.push_back(static_cast<int64_t>(k[i].item<double>()) - 1000 * (b * Hkv + h));
  return out;
}

// The indices of the `keep` largest of `s` (ties: none in these tests), ascending.
std::vector<int64_t> top_indices(const std::vector<double>& s, int64_t keep) {
  std::vector<int64_t> order(s.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[a] > s[b]; });
  order.resize(static_cast<size_t>(keep));
  std::sort(order.begin(), order.end());
  return order;
}

TEST(LayerCache, KeepPerHeadGathersEachHeadAndMovesScores) {
  LayerCache c;
  c.append(token_keys(2, 3, 0, 9), token_keys(2, 3, 0, 9) * 2);
  at::Tensor mass = at::rand({2, 3, 9}, at::kDouble);
  c.add_scores(mass);
  auto row = [](std::vector<int64_t> v) { return at::tensor(v, at::kLong); };
  at::Tensor idx = at::stack({row({0, 2, 8}), row({1, 5, 7}), row({3, 4, 8})}).unsqueeze(0).repeat({2, 1, 1});  // [2, 3, 3]
  c.keep_per_head(idx);
  ASSERT_EQ(c.size(), 3);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t i = 0; i < 3; ++i) {
        const int64_t t = idx[b][h][i].item<int64_t>();
        EXPECT_EQ(kept_tokens(c, b, h, 3)[i], t);
        EXPECT_EQ(c.values()[b][h][i][0].item<double>(), 2 * c.keys()[b][h][i][0].item<double>());
        EXPECT_EQ(c.scores()[b][h][i].item<double>(), mass[b][h][t].item<double>());
      }
  // Appending after a gather: the new entries' scores start at 0, the old ones are kept.
  c.append(token_keys(2, 3, 9, 70), token_keys(2, 3, 9, 70));  // grows the buffers
  ASSERT_EQ(c.size(), 73);
  EXPECT_EQ(c.scores().narrow(2, 3, 70).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(c.scores()[1][2][0].item<double>(), mass[1][2][3].item<double>());
}

// H2O, plainly: per (b, h) a score per token, summed over calls; after each call, beyond capacity,
// keep [0, G), the hh_size best of the rest but the last recent_size, and the last recent_size.
TEST(H2OPolicy, MatchesThePlainRuleOverManyCalls) {
  const int64_t B = 2, Hkv = 2, G = 2;
  const H2OOptions o{3, 4, G};
  H2OPolicy policy(o);
  LayerCache c;
  std::vector<std::vector<std::vector<int64_t>>> kept(B, std::vector<std::vector<int64_t>>(Hkv));
  std::vector<std::vector<std::vector<double>>> score(B, std::vector<std::vector<double>>(Hkv, std::vector<double>(200)));
  at::manual_seed(3);
  int64_t fed = 0;
  for (int64_t n : {5, 1, 1, 6, 1, 9, 1, 1, 2}) {
    c.append(token_keys(B, Hkv, fed, n), token_keys(B, Hkv, fed, n));
    const int64_t K = c.size();
    KeyMass m{policy.mass_rows(n, K), at::rand({B, Hkv, K}, at::kDouble)};
    EXPECT_EQ(m.rows, n);  // every query of every call
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hkv; ++h) {
        auto& ks = kept[b][h];
        for (int64_t i = 0; i < n; ++i) ks.push_back(fed + i);
        for (int64_t j = 0; j < K; ++j) score[b][h][ks[j]] += m.sum[b][h][j].item<double>();
        if (K <= G + o.hh_size + o.recent_size) continue;
        std::vector<double> cand;
        for (int64_t j = G; j < K - o.recent_size; ++j) cand.push_back(score[b][h][ks[j]]);
        std::vector<int64_t> next(ks.begin(), ks.begin() + G);
        for (int64_t j : top_indices(cand, o.hh_size)) next.push_back(ks[G + j]);
        next.insert(next.end(), ks.end() - o.recent_size, ks.end());
        ks = next;
      }
    policy.trim(c, m);
    fed += n;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hkv; ++h) {
        ASSERT_EQ(kept_tokens(c, b, h, Hkv), kept[b][h]) << "after " << fed << " tokens, b " << b << " h " << h;
        for (int64_t j = 0; j < c.size(); ++j)
          EXPECT_NEAR(c.scores()[b][h][j].item<double>(), score[b][h][kept[b][h][j]], 1e-12);
      }
    EXPECT_LE(c.size(), policy.max_size());
  }
}

// SnapKV's pooling written out: avgpool divides the zero-padded window sum by k; maxpool ignores the padding.
std::vector<double> plain_pool(const std::vector<double>& x, int64_t k, bool max_pool) {
  const int64_t n = static_cast<int64_t>(x.size()), r = k / 2;
  std::vector<double> out(x.size());
  for (int64_t i = 0; i < n; ++i) {
    double acc = max_pool ? -1e300 : 0.0;
    for (int64_t j = i - r; j <= i + r; ++j) {
      if (j < 0 || j >= n) continue;
      acc = max_pool ? std::max(acc, x[j]) : acc + x[j];
    }
    out[i] = max_pool ? acc : acc / static_cast<double>(k);
  }
  return out;
}

TEST(SnapKVPolicy, MatchesThePlainRuleOnPromptsAndChunks) {
  const int64_t B = 2, Hkv = 3, G = 1;
  for (bool max_pool : {false, true}) {
    const SnapKVOptions o{3, 7, 3, max_pool, G};
    SnapKVPolicy policy(o);
    LayerCache c;
    std::vector<std::vector<std::vector<int64_t>>> kept(B, std::vector<std::vector<int64_t>>(Hkv));
    at::manual_seed(max_pool ? 5 : 6);
    int64_t fed = 0, ties = 0;
    std::vector<std::tuple<int64_t, int64_t, std::vector<double>, std::vector<int64_t>, int64_t, double>> policy_choices;
    // A prompt of 8 = G + capacity (no eviction), one past it, decoding (never compresses), chunks.
    for (int64_t n : {8, 1, 1, 4, 2, 3, 5}) {
      c.append(token_keys(B, Hkv, fed, n), token_keys(B, Hkv, fed, n));
      const int64_t K = c.size();
      KeyMass m{policy.mass_rows(n, K), at::Tensor()};
      const bool evicts = n >= o.window_size && K > G + o.max_capacity_prompt;
      EXPECT_EQ(m.rows, evicts ? o.window_size : 0) << "call of " << n << " over " << K;
      if (m.rows > 0) m.sum = at::rand({B, Hkv, K}, at::kDouble);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < Hkv; ++h) {
          auto& ks = kept[b][h];
          for (int64_t i = 0; i < n; ++i) ks.push_back(fed + i);
          if (!evicts) continue;
          std::vector<double> votes;
          for (int64_t j = G; j < K - o.window_size; ++j) votes.push_back(m.sum[b][h][j].item<double>());
          const std::vector<double> pooled = plain_pool(votes, o.kernel_size, max_pool);
          const int64_t keep = o.max_capacity_prompt - o.window_size;
          std::vector<int64_t> next(ks.begin(), ks.begin() + G);
          for (int64_t j : top_indices(pooled, keep)) next.push_back(ks[G + j]);
          next.insert(next.end(), ks.end() - o.window_size, ks.end());
          // maxpool repeats a maximum over neighbouring keys: where the k-th and (k+1)-th pooled
          // votes tie, any of the tied keys is right; the choice must still be a top-k.
          std::vector<double> sorted = pooled;
          std::sort(sorted.rbegin(), sorted.rend());
          if (keep < static_cast<int64_t>(sorted.size()) && sorted[keep - 1] == sorted[keep]) {
            policy_choices.emplace_back(b, h, pooled, std::vector<int64_t>(ks.begin() + G, ks.end() - o.window_size),
                                        keep, sorted[keep - 1]);
            next.clear();
          }
          ks = next;
        }
      policy.trim(c, m);
      fed += n;
      for (const auto& [b, h, pooled, candidates, keep, kth] : policy_choices) {
        // A tie: lminf's choice has every kept candidate's pooled vote >= the k-th, and it is adopted.
        std::vector<int64_t> got = kept_tokens(c, b, h, Hkv);
        int64_t kept_candidates = 0;
        for (size_t j = 0; j < candidates.size(); ++j)
          if (std::find(got.begin(), got.end(), candidates[j]) != got.end()) {
            EXPECT_GE(pooled[j], kth) << "a kept key that is not among the top " << keep;
            ++kept_candidates;
          }
        EXPECT_EQ(kept_candidates, keep);
        kept[b][h] = got;
        ++ties;
      }
      policy_choices.clear();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < Hkv; ++h)
          ASSERT_EQ(kept_tokens(c, b, h, Hkv), kept[b][h]) << "after " << fed << ", maxpool " << max_pool;
    }
    if (!max_pool) EXPECT_EQ(ties, 0);  // avgpool of random votes never ties
  }
}

TEST(SnapKVPolicy, BoundedOnlyForChunksOfAtLeastTheWindow) {
  SnapKVPolicy p(SnapKVOptions{4, 10, 5, false, 2});
  EXPECT_EQ(p.max_size(), -1);  // decoding grows the cache, as in the reference
  EXPECT_EQ(p.max_size_for_chunks(3), -1);
  EXPECT_EQ(p.max_size_for_chunks(4), 12);
  EXPECT_EQ(H2OPolicy(H2OOptions{3, 5, 2}).max_size_for_chunks(1), 10);
}

// Memory stays flat through a long run of chunks: the buffers stop growing once they hold the
// capacity plus one chunk.
TEST(H2OPolicy, CacheBytesStayFlatOverAStream) {
  H2OPolicy policy(H2OOptions{8, 16, 4});
  LayerCache c;
  int64_t bytes_after_warmup = 0;
  for (int64_t call = 0; call < 200; ++call) {
    c.append(at::randn({1, 2, 7, 4}), at::randn({1, 2, 7, 4}));
    policy.trim(c, KeyMass{7, at::rand({1, 2, c.size()})});
    EXPECT_LE(c.size(), policy.max_size());
    if (call == 10) bytes_after_warmup = c.bytes();
    if (call > 10) ASSERT_EQ(c.bytes(), bytes_after_warmup) << "call " << call;
  }
}

}  // namespace
}  // namespace lminf
