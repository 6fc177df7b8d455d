// The position-aware variants (lambda, topk, streaming, distance_limit) against the plain per-(query,
// key) rule references of attention/reference/rule_reference.h, on random inputs of awkward sizes; full prefill
// against prefill-then-decode and chunked streaming through each variant's cache policy; decode
// reading only the keys it may; observer tiles reassembling the rule's logits.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <sstream>

#include "attention/variants/distance_limit.h"
#include "attention/variants/lambda.h"
#include "attention/reference/rule_reference.h"
#include "attention/variants/streaming.h"
#include "attention/variants/top_k.h"
#include "framework/transformer/alibi.h"

namespace lminf {
namespace {

struct Shape {
  int64_t B, H, Hkv, T, D;
};

struct Inputs {
  at::Tensor q, k, v;  // [B, H, T, D], [B, Hkv, T, D] x2, pre-RoPE
};

Inputs random_inputs(const Shape& s, at::ScalarType dt, uint64_t seed) {
  at::manual_seed(seed);
  // Scaled so the softmax is neither flat nor one-hot.
  return {(at::randn({s.B, s.H, s.T, s.D}, at::kDouble) * 0.7).to(dt),
          (at::randn({s.B, s.Hkv, s.T, s.D}, at::kDouble) * 0.7).to(dt),
          at::randn({s.B, s.Hkv, s.T, s.D}, at::kDouble).to(dt)};
}

RotaryEmbedding test_rope(int64_t D) { return RotaryEmbedding(D, 10000.0, 2048, RopeScaling{}); }

// The position encodings every variant is checked under: Llama's rotate-half rotary, GPT-J's
// partial interleaved rotary (rot_dim = D - 2: two features pass through), MPT's ALiBi (slopes of
// H heads, not a power of two for H = 6).
enum class EncodingKind { kRotaryHalf, kRotaryInterleavedPartial, kAlibi };
const EncodingKind kAllEncodings[] = {EncodingKind::kRotaryHalf, EncodingKind::kRotaryInterleavedPartial,
                                      EncodingKind::kAlibi};

struct TestEncoding {
  EncodingKind kind;
  RotaryEmbedding rope;
  at::Tensor slopes;  // [H] for ALiBi
  TestEncoding(EncodingKind k, int64_t D, int64_t H)
      : kind(k),
        rope(k == EncodingKind::kRotaryInterleavedPartial ? D - 2 : D, 10000.0, 2048, RopeScaling{},
             k == EncodingKind::kRotaryInterleavedPartial ? RopeLayout::kInterleaved : RopeLayout::kHalf) {
    if (k == EncodingKind::kAlibi) slopes = alibi_slopes(H, 8.0);
  }
  bool alibi() const { return kind == EncodingKind::kAlibi; }
  RuleEncoding rule() const { return alibi() ? RuleEncoding::alibi(slopes) : RuleEncoding(rope); }
  std::string label() const {
    return kind == EncodingKind::kRotaryHalf ? "rotate-half" : kind == EncodingKind::kAlibi ? "alibi" : "interleaved";
  }
};

// Runs `variant` on queries [q_offset, K) against keys [0, K) as a model would.
at::Tensor run(const AttentionVariant& variant, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
               const RotaryEmbedding& rope, int64_t layer = 0, const ObserverSet* obs = nullptr) {
  AttentionCall call;
  call.q = q;
  call.k = k;
  call.v = v;
  call.q_offset = k.size(2) - q.size(2);
  call.abs_q_start = call.q_offset;
  call.rope = &rope;
  call.layer = layer;
  call.observers = obs;
  return variant.forward(call);
}

at::Tensor run(const AttentionVariant& variant, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
               const TestEncoding& enc, int64_t layer = 0, const ObserverSet* obs = nullptr) {
  if (!enc.alibi()) return run(variant, q, k, v, enc.rope, layer, obs);
  AttentionCall call;
  call.q = q;
  call.k = k;
  call.v = v;
  call.q_offset = k.size(2) - q.size(2);
  call.abs_q_start = call.q_offset;
  call.alibi_slopes = enc.slopes;
  call.layer = layer;
  call.observers = obs;
  return variant.forward(call);
}

double max_err(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
}

double scale_of(int64_t D) { return 1.0 / std::sqrt(double(D)); }

// One variant configuration with its rule.
struct Config {
  std::string label;
  std::function<std::unique_ptr<AttentionVariant>()> make;
  std::function<AttentionRule(int64_t Tq, int64_t K, int64_t q_offset)> rule;
  int64_t window;  // the band width the test sizes are chosen around
};

Config lambda_config(int64_t L, int64_t G, std::optional<int64_t> D, BlockwiseOptions tiles) {
  std::ostringstream os;
  os << "lambda L=" << L << " G=" << G << " D=" << (D ? std::to_string(*D) : "null") << " tiles=" << tiles.block_q
     << "x" << tiles.block_k;
  return {os.str(),
          [=] {
            return std::make_unique<LambdaAttention>(LambdaOptions{L, G, D, tiles});
          },
          [=](int64_t Tq, int64_t K, int64_t off) { return lambda_rule(Tq, K, off, L, G, D); },
          std::max<int64_t>(L, 4)};
}

Config streaming_config(int64_t S, int64_t R, BlockwiseOptions tiles) {
  std::ostringstream os;
  os << "streaming S=" << S << " R=" << R << " tiles=" << tiles.block_q << "x" << tiles.block_k;
  return {os.str(),
          [=] {
            return std::make_unique<StreamingAttention>(StreamingOptions{S, R, tiles});
          },
          [=](int64_t Tq, int64_t K, int64_t off) { return streaming_rule(Tq, K, off, S, R); },
          std::max<int64_t>(R, 4)};
}

Config distance_limit_config(std::optional<int64_t> D, double tau, int64_t L, int64_t G, BlockwiseOptions tiles) {
  std::ostringstream os;
  os << "distance_limit D=" << (D ? std::to_string(*D) : "null") << " tau=" << tau << " L=" << L << " G=" << G
     << " tiles=" << tiles.block_q << "x" << tiles.block_k;
  return {os.str(),
          [=] {
            return std::make_unique<DistanceLimitAttention>(DistanceLimitOptions{D, tau, L, G, tiles});
          },
          [=](int64_t Tq, int64_t K, int64_t off) { return distance_limit_rule(Tq, K, off, D, L, G, tau); },
          std::max<int64_t>(D.value_or(L), 4)};
}

// Prefill (q_offset = 0) and a chunk after cached keys (q_offset > 0), against the rule reference.
// Under every position encoding.
void check_against_rule(const Config& c, const Shape& s, at::ScalarType dt, double tol) {
  const uint64_t seed = 17 + 131 * static_cast<uint64_t>(s.T) + 7 * static_cast<uint64_t>(s.H);
  Inputs in = random_inputs(s, dt, seed);
  auto variant = c.make();
  for (EncodingKind kind : kAllEncodings) {
    TestEncoding enc(kind, s.D, s.H);
    for (int64_t Tq : {s.T, std::max<int64_t>(1, s.T / 3), int64_t{1}}) {
      const int64_t off = s.T - Tq;
      at::Tensor q = in.q.narrow(2, off, Tq);
      at::Tensor got = run(*variant, q, in.k, in.v, enc);
      at::Tensor want =
          rule_attention_reference(q, in.k, in.v, c.rule(Tq, s.T, off), enc.rule(), s.T, scale_of(s.D));
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_EQ(got.scalar_type(), dt);
      EXPECT_LT(max_err(got, want), tol) << c.label << " " << enc.label() << " B=" << s.B << " H=" << s.H
                                         << " Hkv=" << s.Hkv << " T=" << s.T << " Tq=" << Tq << " "
                                         << at::toString(dt);
    }
  }
}

// The awkward sizes of the issue around a window W: T < W, T = W, T = W + 1, T not a multiple of W,
// GQA, multi-query, batch 2.
std::vector<Shape> shapes_around(int64_t W) {
  return {{1, 2, 2, std::max<int64_t>(1, W - 3), 8},
          {2, 4, 2, W, 8},
          {1, 4, 1, W + 1, 8},
          {2, 4, 2, 3 * W + 2, 16},
          {1, 6, 3, 2 * W + W / 2 + 1, 8}};
}

TEST(Lambda, MatchesRuleReference) {
  const std::vector<Config> configs = {
      lambda_config(8, 2, 8, {5, 7}),             // the paper's setting D = L, tiles not dividing anything
      lambda_config(8, 3, 8, {256, 1024}),        // one tile
      lambda_config(6, 0, 6, {4, 4}),             // G = 0: a sliding window
      lambda_config(5, 40, 5, {3, 16}),           // G > T: every earlier key is a starting token
      lambda_config(7, 2, std::nullopt, {6, 5}),  // D null: the lambda mask alone
      lambda_config(8, 3, 3, {5, 9}),             // D < L
      lambda_config(6, 2, 11, {4, 8}),            // D > L: D_eff = min(D, K-1)
      lambda_config(1, 2, 1, {3, 2}),             // L = 1: each token sees itself and the starting tokens
      // The online path (key tiles merged by a running softmax): G > block_k, or W > 16 x block_k.
      lambda_config(8, 3, 8, {5, 2}),
      lambda_config(40, 2, 40, {7, 2}),
  };
  for (const auto& c : configs)
    for (const auto& s : shapes_around(c.window)) check_against_rule(c, s, at::kDouble, 1e-10);
  check_against_rule(configs[0], {2, 4, 2, 29, 16}, at::kFloat, 5e-5);
  check_against_rule(configs[8], {2, 4, 2, 29, 16}, at::kFloat, 5e-5);
}

TEST(Lambda, BFloat16CloseToReference) {
  check_against_rule(lambda_config(8, 2, 8, {5, 7}), {1, 4, 2, 30, 16}, at::kBFloat16, 4e-2);
  check_against_rule(lambda_config(8, 3, 8, {5, 2}), {1, 4, 2, 30, 16}, at::kBFloat16, 4e-2);
}

TEST(Streaming, MatchesRuleReference) {
  const std::vector<Config> configs = {
      streaming_config(2, 5, {4, 3}),      streaming_config(0, 4, {5, 7}),  // no sinks: a sliding window
      streaming_config(3, 1, {3, 5}),                                       // the window is the query alone
      streaming_config(30, 4, {4, 6}),                                      // more sinks than tokens
      streaming_config(4, 8, {256, 1024}), streaming_config(3, 6, {4, 2}),  // the online path
  };
  for (const auto& c : configs)
    for (const auto& s : shapes_around(c.window)) check_against_rule(c, s, at::kDouble, 1e-10);
  check_against_rule(configs[0], {2, 4, 2, 23, 16}, at::kFloat, 5e-5);
}

TEST(DistanceLimit, MatchesRuleReference) {
  const std::vector<Config> configs = {
      distance_limit_config(5, 0.0, 5, 2, {4, 3}),             // every key at min(d, D)
      distance_limit_config(5, 0.8, 5, 2, {5, 7}),             // plus the triangle offset on the middle
      distance_limit_config(std::nullopt, 1.0, 4, 1, {3, 4}),  // no ceiling: vanilla + triangle offset
      distance_limit_config(7, 0.5, 4, 3, {6, 5}),             // D > L: the offset starts before the ceiling
      distance_limit_config(3, 0.0, 8, 0, {256, 1024}),
  };
  for (const auto& c : configs)
    for (const auto& s : shapes_around(c.window)) check_against_rule(c, s, at::kDouble, 1e-10);
  check_against_rule(configs[1], {1, 4, 2, 31, 16}, at::kFloat, 5e-5);
}

TEST(TopK, MatchesRuleReferenceOnLastRow) {
  const int64_t L = 5, G = 2, top_k = 3, insert_at = 7;
  for (const auto& s : std::vector<Shape>{{1, 2, 2, 23, 8}, {2, 4, 2, 17, 8}, {1, 6, 2, 31, 16}})
   for (EncodingKind kind : kAllEncodings) {
    Inputs in = random_inputs(s, at::kDouble, 99 + static_cast<uint64_t>(s.T));
    TestEncoding rope(kind, s.D, s.H);
    TopKAttention variant(LambdaOptions{L, G, L, {4, 6}}, TopKOptions{top_k, 1, 3, insert_at});
    for (int64_t Tq : {s.T, int64_t{4}, int64_t{1}}) {
      const int64_t off = s.T - Tq;
      at::Tensor q = in.q.narrow(2, off, Tq);
      at::Tensor got = run(variant, q, in.k, in.v, rope, /*layer=*/1);
      AttentionRule rule = topk_rule(q, in.k, off, L, G, L, top_k, insert_at, rope.rule(), s.T, scale_of(s.D));
      at::Tensor want = rule_attention_reference(q, in.k, in.v, rule, rope.rule(), s.T, scale_of(s.D));
      EXPECT_LT(max_err(got, want), 1e-10) << "T=" << s.T << " Tq=" << Tq << " " << rope.label();
      // Retrieval happened: the last row differs from lambda's; the other rows do not.
      at::Tensor lambda_want = rule_attention_reference(q, in.k, in.v, lambda_rule(Tq, s.T, off, L, G, L), rope.rule(),
                                                        s.T, scale_of(s.D));
      EXPECT_GT(max_err(got.narrow(2, Tq - 1, 1), lambda_want.narrow(2, Tq - 1, 1)), 1e-6);
      if (Tq > 1) EXPECT_LT(max_err(got.narrow(2, 0, Tq - 1), lambda_want.narrow(2, 0, Tq - 1)), 1e-10);
      // Outside [from, to) the variant is lambda.
      at::Tensor outside = run(variant, q, in.k, in.v, rope, /*layer=*/3);
      EXPECT_LT(max_err(outside, lambda_want), 1e-10);
    }
  }
}

TEST(TopK, TooFewMiddleKeysMeansLambda) {
  // p = 9, middle [2, 5): 3 keys < top_k = 4.
  const Shape s{1, 2, 1, 10, 8};
  Inputs in = random_inputs(s, at::kDouble, 5);
  RotaryEmbedding rope = test_rope(s.D);
  TopKAttention variant(LambdaOptions{5, 2, 5, {4, 4}}, TopKOptions{4, 0, 10, 6});
  at::Tensor got = run(variant, in.q, in.k, in.v, rope);
  at::Tensor want =
      rule_attention_reference(in.q, in.k, in.v, lambda_rule(s.T, s.T, 0, 5, 2, 5), rope, s.T, scale_of(s.D));
  EXPECT_LT(max_err(got, want), 1e-10);
}

// ---- streaming through the cache: full prefill = prefill then decode = chunks -----------------

// Feeds the stream in chunks through a LayerCache trimmed by the variant's policy; returns the
// outputs of every position, concatenated, and checks the cache bound after each call.
at::Tensor stream_in_chunks(const AttentionVariant& variant, const Inputs& in, const std::vector<int64_t>& chunks,
                            const TestEncoding& enc, int64_t* max_cache = nullptr) {
  auto policy = variant.cache_policy();
  LayerCache cache;
  std::vector<at::Tensor> outs;
  int64_t fed = 0, largest = 0;
  const int64_t T = in.q.size(2);
  for (size_t c = 0; fed < T; ++c) {
    const int64_t n = std::min(chunks[std::min(c, chunks.size() - 1)], T - fed);
    cache.append(in.k.narrow(2, fed, n), in.v.narrow(2, fed, n));
    AttentionCall call;
    call.q = in.q.narrow(2, fed, n);
    call.k = cache.keys();
    call.v = cache.values();
    call.q_offset = cache.size() - n;
    call.abs_q_start = fed;
    if (enc.alibi())
      call.alibi_slopes = enc.slopes;
    else
      call.rope = &enc.rope;
    outs.push_back(variant.forward(call));
    policy->trim(cache);
    if (policy->max_size() >= 0) EXPECT_LE(cache.size(), policy->max_size()) << variant.name();
    largest = std::max(largest, cache.size());
    fed += n;
  }
  if (max_cache) *max_cache = largest;
  return at::cat(outs, 2);
}

void check_streaming_equivalence(const AttentionVariant& variant, int64_t bound, const std::string& label) {
  const Shape s{2, 4, 2, 61, 16};
  Inputs in = random_inputs(s, at::kFloat, 2024);
  for (EncodingKind kind : kAllEncodings) {
  TestEncoding rope(kind, s.D, s.H);
  at::Tensor full = run(variant, in.q, in.k, in.v, rope);
  const std::vector<std::vector<int64_t>> schedules = {
      {1},                  // token by token
      {20, 1},              // prefill, then decode
      {7, 3, 1, 11, 2, 5},  // chunks of mixed sizes
      {13},
  };
  for (const auto& sched : schedules) {
    int64_t largest = 0;
    at::Tensor chunked = stream_in_chunks(variant, in, sched, rope, &largest);
    // Angles at renumbered positions differ from the absolute ones by float32 rounding only.
    EXPECT_LT(max_err(chunked, full), 2e-4) << label << " " << rope.label() << " schedule starting " << sched[0];
    if (bound >= 0) EXPECT_LE(largest, bound) << label;
  }
  }
}

TEST(Streaming, ChunkedEqualsPrefillWithBoundedCache) {
  LambdaAttention lambda(LambdaOptions{8, 3, 8, {5, 7}});
  check_streaming_equivalence(lambda, 3 + 8, "lambda D=L");
  check_streaming_equivalence(LambdaAttention(LambdaOptions{8, 3, 5, {4, 4}}), 3 + 8, "lambda D<L");
  check_streaming_equivalence(LambdaAttention(LambdaOptions{6, 0, 6, {3, 8}}), 6, "lambda G=0");
  check_streaming_equivalence(StreamingAttention(StreamingOptions{2, 9, {4, 5}}), 2 + 8, "streaming");
  check_streaming_equivalence(StreamingAttention(StreamingOptions{0, 5, {4, 5}}), 4, "streaming no sinks");
  // Full-cache variants: every key stays, the positions are absolute.
  check_streaming_equivalence(DistanceLimitAttention(DistanceLimitOptions{6, 0.5, 6, 2, {5, 4}}), -1, "distance_limit");
}

TEST(Streaming, ChunkedMatchesRuleOnTheCache) {
  // Lambda with limit_distance null: after eviction "true distance" means distance in the cache
  // (positions renumbered as in spec 2.11), so each call equals the rule applied to the cache.
  const Shape s{1, 4, 2, 40, 8};
  Inputs in = random_inputs(s, at::kDouble, 77);
  RotaryEmbedding rope = test_rope(s.D);
  LambdaAttention variant(LambdaOptions{6, 2, std::nullopt, {4, 4}});
  auto policy = variant.cache_policy();
  LayerCache cache;
  for (int64_t fed = 0; fed < s.T;) {
    const int64_t n = std::min<int64_t>(fed < 10 ? 10 : 3, s.T - fed);
    cache.append(in.k.narrow(2, fed, n), in.v.narrow(2, fed, n));
    at::Tensor q = in.q.narrow(2, fed, n);
    at::Tensor got = run(variant, q, cache.keys(), cache.values(), rope);
    const int64_t K = cache.size();
    at::Tensor want = rule_attention_reference(q, cache.keys(), cache.values(),
                                               lambda_rule(n, K, K - n, 6, 2, std::nullopt), rope, K, scale_of(s.D));
    EXPECT_LT(max_err(got, want), 1e-10) << "fed=" << fed;
    policy->trim(cache);
    fed += n;
  }
}

TEST(Lambda, DecodeReadsOnlyStartAndRecentKeys) {
  // A full cache whose middle is NaN: a decoded token must not touch it.
  const int64_t L = 6, G = 3, K = 50;
  const Shape s{2, 4, 2, K, 8};
  Inputs in = random_inputs(s, at::kFloat, 3);
  RotaryEmbedding rope = test_rope(s.D);
  at::Tensor k_nan = in.k.clone(), v_nan = in.v.clone();
  k_nan.narrow(2, G, K - L - G).fill_(NAN);
  v_nan.narrow(2, G, K - L - G).fill_(NAN);
  LambdaAttention variant(LambdaOptions{L, G, L, {4, 4}});
  at::Tensor q = in.q.narrow(2, K - 1, 1);
  at::Tensor got = run(variant, q, k_nan, v_nan, rope);
  EXPECT_TRUE(at::isfinite(got).all().item<bool>());
  at::Tensor want = rule_attention_reference(q, in.k, in.v, lambda_rule(1, K, K - 1, L, G, L), rope, K, scale_of(s.D));
  EXPECT_LT(max_err(got, want), 5e-5);
  // The same for a chunk of 4 queries: the band starts at K - 4 - L + 1.
  k_nan = in.k.clone();
  v_nan = in.v.clone();
  k_nan.narrow(2, G, K - 4 - L + 1 - G).fill_(NAN);
  v_nan.narrow(2, G, K - 4 - L + 1 - G).fill_(NAN);
  at::Tensor got4 = run(variant, in.q.narrow(2, K - 4, 4), k_nan, v_nan, rope);
  EXPECT_TRUE(at::isfinite(got4).all().item<bool>());
}

// ---- observers -------------------------------------------------------------------------------

// Stitches tiles into [B, H, Tq, K], counting how many tiles gave each pair a finite logit.
class TileCollector : public Observer {
 public:
  TileCollector(int64_t B, int64_t H, int64_t Tq, int64_t K)
      : full(at::full({B, H, Tq, K}, -INFINITY, at::kDouble)), finite_count(at::zeros({B, H, Tq, K}, at::kLong)) {}
  at::Tensor full, finite_count;
  bool wants(Site s, int64_t) const override { return s == Site::kAttnLogits; }
  void observe(const Observation& o) override {
    at::Tensor dst = full.narrow(2, o.q_start, o.data.size(2)).narrow(3, o.k_start, o.data.size(3));
    at::Tensor finite = at::isfinite(o.data);
    dst.copy_(at::where(finite, o.data.to(at::kDouble), dst));
    finite_count.narrow(2, o.q_start, o.data.size(2)).narrow(3, o.k_start, o.data.size(3)).add_(finite.to(at::kLong));
  }
};

TEST(Observers, TilesReassembleTheRuleLogits) {
  const Shape s{1, 4, 2, 27, 8};
  Inputs in = random_inputs(s, at::kDouble, 11);
  RotaryEmbedding rope = test_rope(s.D);
  for (const Config& c :
       {lambda_config(6, 3, 6, {4, 5}), streaming_config(2, 5, {5, 3}), distance_limit_config(5, 0.5, 5, 2, {4, 6})}) {
    auto collector = std::make_shared<TileCollector>(s.B, s.H, s.T, s.T);
    ObserverSet obs;
    obs.add(collector);
    run(*c.make(), in.q, in.k, in.v, rope, 0, &obs);
    AttentionRule rule = c.rule(s.T, s.T, 0);
    at::Tensor want = rule_logits(in.q, in.k, rule, rope, s.T, scale_of(s.D));
    at::Tensor vis = rule.visible.expand_as(want);
    EXPECT_TRUE(at::equal(collector->finite_count, vis.to(at::kLong))) << c.label << ": each visible pair exactly once";
    EXPECT_LT((collector->full.masked_select(vis) - want.masked_select(vis)).abs().max().item<double>(), 1e-10)
        << c.label;
  }
}

}  // namespace
}  // namespace lminf
