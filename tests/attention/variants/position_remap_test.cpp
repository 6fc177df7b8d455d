// The position-remapping baselines (self_extend, rerope, dca) beyond their rule tests
// (tests/attention/every_variant_test.cpp): ReRoPE without its leak and its log scaling is
// distance_limit at limit_distance = window, and one prefill equals chunked streaming and
// token-by-token decoding through the variant's cache, under each family's position encoding.
#include <gtest/gtest.h>

#include <cmath>

#include "attention/registry.h"
#include "framework/transformer/alibi.h"
#include "framework/transformer/kv_cache.h"
#include "framework/transformer/rope.h"

namespace lminf {
namespace {

enum class Encoding { kRotateHalf, kInterleavedPartial, kAlibi };

struct Inputs {
  at::Tensor q, k, v;  // [B, H, T, D], [B, Hkv, T, D] x2, pre-encoding
  RotaryEmbedding rope;
  at::Tensor slopes;  // [H] under ALiBi, else undefined

  Inputs(Encoding e, int64_t T, at::ScalarType dt)
      : rope(e == Encoding::kInterleavedPartial ? 6 : 8, 10000.0, 2048, RopeScaling{},
             e == Encoding::kInterleavedPartial ? RopeLayout::kInterleaved : RopeLayout::kHalf) {
    at::manual_seed(7 + T);
    q = (at::randn({2, 4, T, 8}, at::kDouble) * 0.7).to(dt);
    k = (at::randn({2, 2, T, 8}, at::kDouble) * 0.7).to(dt);
    v = at::randn({2, 2, T, 8}, at::kDouble).to(dt);
    if (e == Encoding::kAlibi) slopes = alibi_slopes(4, 8.0);
  }
  // The call of queries [q0, q0 + n) against the keys and values given (a cache's content).
  AttentionCall call(int64_t q0, int64_t n, const at::Tensor& keys, const at::Tensor& values) const {
    AttentionCall c;
    c.q = q.narrow(2, q0, n);
    c.k = keys;
    c.v = values;
    c.q_offset = keys.size(2) - n;
    c.abs_q_start = q0;
    if (slopes.defined()) c.alibi_slopes = slopes;
    else c.rope = &rope;
    return c;
  }
};

const Encoding kEncodings[] = {Encoding::kRotateHalf, Encoding::kInterleavedPartial, Encoding::kAlibi};

TEST(Rerope, WithoutLeakOrLogScaleIsDistanceLimitAtTheWindow) {
  const int64_t T = 37;
  for (Encoding e : kEncodings) {
    const Inputs in(e, T, at::kFloat);
    for (int64_t w : {1, 5, 9, 36, 37, 50}) {
      const std::string tiles = ", block_size: 5, key_block_size: 7}";
      auto rerope = make_attention(AttentionSpec::parse("{variant: rerope, window: " + std::to_string(w) + tiles));
      auto limit = make_attention(
          AttentionSpec::parse("{variant: distance_limit, limit_distance: " + std::to_string(w) + tiles));
      // Prefill, and a chunk of 3 after 34 cached entries: the same kernel arguments, so equal bits.
      for (int64_t q0 : {0, 34}) {
        const AttentionCall c = in.call(q0, T - q0, in.k, in.v);
        EXPECT_TRUE(at::equal(rerope->forward(c), limit->forward(c))) << "window " << w << " from " << q0;
      }
    }
  }
}

// Outputs of every row when the T tokens arrive in calls of the sizes of `schedule` (the last size
// repeats), each call seeing what the variant's cache kept.
at::Tensor streamed(const AttentionVariant& variant, const Inputs& in, const std::vector<int64_t>& schedule) {
  const int64_t T = in.q.size(2);
  auto policy = variant.cache_policy();
  LayerCache cache;
  std::vector<at::Tensor> outs;
  for (int64_t fed = 0, c = 0; fed < T; ++c) {
    const int64_t n = std::min(schedule[std::min<size_t>(c, schedule.size() - 1)], T - fed);
    cache.append(in.k.narrow(2, fed, n), in.v.narrow(2, fed, n));
    outs.push_back(variant.forward(in.call(fed, n, cache.keys(), cache.values())));
    policy->trim(cache);
    fed += n;
  }
  return at::cat(outs, 2);
}

TEST(PositionRemap, ChunkedStreamingAndDecodeEqualOnePrefill) {
  const int64_t T = 41;
  for (const std::string& name : {"self_extend", "rerope", "dca"}) {
    const VariantInfo* info = find_attention_variant(name);
    ASSERT_NE(info, nullptr) << name;
    for (const auto& section : attention_test_sections()) {
      const AttentionSpec spec = AttentionSpec::parse(section);
      if (spec.variant != name) continue;
      auto variant = make_attention(spec);
      for (Encoding e : kEncodings) {
        const Inputs in(e, T, at::kDouble);
        const at::Tensor prefill = streamed(*variant, in, {T});
        // Float64: the calls differ from the prefill only in tiling and rounding.
        for (const std::vector<int64_t>& schedule : std::vector<std::vector<int64_t>>{{1}, {7, 3, 1, 11, 2, 5}, {20, 1}})
          EXPECT_LT((streamed(*variant, in, schedule) - prefill).abs().max().item<double>(), 1e-10)
              << section << " schedule starting " << schedule[0];
      }
    }
  }
}

}  // namespace
}  // namespace lminf
