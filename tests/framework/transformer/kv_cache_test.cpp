#include <gtest/gtest.h>

#include "framework/transformer/kv_cache.h"
#include "framework/transformer/rope.h"

namespace lminf {
namespace {

TEST(KVCache, AppendGrowsAndKeepsContents) {
  LayerCache c;
  at::manual_seed(0);
  std::vector<at::Tensor> ks, vs;
  for (int64_t t : {3, 1, 70, 1, 129}) {
    ks.push_back(at::randn({2, 3, t, 4}));
    vs.push_back(at::randn({2, 3, t, 4}));
    c.append(ks.back(), vs.back());
  }
  EXPECT_EQ(c.size(), 204);
  EXPECT_GE(c.capacity(), 204);
  EXPECT_TRUE(at::equal(c.keys(), at::cat(ks, 2)));
  EXPECT_TRUE(at::equal(c.values(), at::cat(vs, 2)));
}

TEST(KVCache, HeadTailPolicyKeepsFirstAndLast) {
  LayerCache c;
  at::Tensor k = at::arange(0, 50, at::kFloat).view({1, 1, 50, 1});
  c.append(k, k * 2);
  HeadTailPolicy p(4, 10);
  p.trim(c);
  ASSERT_EQ(c.size(), 14);
  std::vector<float> want = {0, 1, 2, 3, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49};
  at::Tensor got = c.keys().reshape({-1}).contiguous();
  EXPECT_EQ(std::vector<float>(got.data_ptr<float>(), got.data_ptr<float>() + 14), want);
  EXPECT_TRUE(at::equal(c.values(), c.keys() * 2));
  // Memory stays bounded: many more appends and trims do not grow capacity past a fixed bound.
  const int64_t cap = c.capacity();
  for (int i = 0; i < 100; ++i) {
    c.append(at::ones({1, 1, 8, 1}), at::ones({1, 1, 8, 1}));
    p.trim(c);
  }
  EXPECT_EQ(c.size(), 14);
  EXPECT_LE(c.capacity(), std::max<int64_t>(cap, 64));
}

TEST(KVCache, KeepAllKeepsEverythingAndCountsFed) {
  KVCache cache(2, std::make_shared<KeepAllPolicy>());
  for (int64_t l = 0; l < 2; ++l) cache.layer(l).append(at::zeros({1, 1, 5, 2}), at::zeros({1, 1, 5, 2}));
  cache.advance(5);
  EXPECT_EQ(cache.size(), 5);
  EXPECT_EQ(cache.n_fed(), 5);
  cache.clear();
  EXPECT_EQ(cache.size(), 0);
  EXPECT_EQ(cache.n_fed(), 0);
}

// The keys rotated at their cache index, rotated incrementally, equal rotating the whole cache at
// once (to the rounding of cos/sin: elementwise ops whose vectorised and scalar paths may differ by
// an ulp of the table), and stay right across growth, removal and renumbering.
TEST(KVCache, RotatedKeysEqualRotatingTheWholeCache) {
  for (RopeLayout layout : {RopeLayout::kHalf, RopeLayout::kInterleaved}) {
    RotaryEmbedding rope(8, 10000.0, 4096, RopeScaling{}, layout);
    LayerCache c;
    at::manual_seed(1);
    auto expect_rotated = [&](const std::string& when) {
      at::Tensor k = c.keys();
      at::Tensor want = rope.rotate(k, at::arange(0, c.size(), at::kLong), c.size());
      at::Tensor got = c.rotated_keys(rope);
      ASSERT_EQ(got.sizes(), want.sizes()) << when;
      // |x| <= ~4 (randn), cos/sin within a few ulps of float32: 8 * 2^-23 * |x| * 2 terms.
      const double bound = 16.0 * 0x1p-23 * (k.abs().max().item<double>() + 1.0);
      EXPECT_LE((got - want).abs().max().item<double>(), bound) << when;
    };
    for (int64_t t : {5, 1, 1, 70, 1, 3}) {  // 70 grows the buffer past its first capacity of 64
      c.append(at::randn({2, 3, t, 10}), at::randn({2, 3, t, 10}));
      expect_rotated("after appending " + std::to_string(t));
    }
    c.keep_head_and_tail(4, 20);  // renumbered: every surviving key moves to a new index
    expect_rotated("after keep_head_and_tail");
    c.append(at::randn({2, 3, 2, 10}), at::randn({2, 3, 2, 10}));
    expect_rotated("after appending past the trim");
    c.keep_per_head(at::arange(0, 9, at::kLong).mul(2).view({1, 1, 9}).expand({2, 3, 9}).contiguous());
    expect_rotated("after keep_per_head");
    EXPECT_GT(c.bytes(), 0);
  }
}

}  // namespace
}  // namespace lminf
