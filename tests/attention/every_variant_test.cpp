// Every registered variant, on each of its registry test sections, against its float64 rule
// reference (attention/reference/variant_rules.h): under each family's position encoding (Llama's
// rotate-half rotary with grouped-query heads, GPT-J's partial interleaved rotary, MPT's ALiBi), in
// float64 and float32, at prefill and at prefill then decode through the variant's own cache policy.
// Driven by the registry: a new variant without a rule or without test sections fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <ostream>

#include "attention/reference/variant_rules.h"
#include "attention/registry.h"
#include "framework/transformer/alibi.h"
#include "framework/transformer/kv_cache.h"
#include "framework/transformer/rope.h"

namespace lminf {
namespace {

TEST(EveryVariant, HasAReferenceRuleAndTestSections) {
  for (const auto& v : attention_variants()) {
    EXPECT_NE(variant_rule(v.name), nullptr) << "attention/reference/variant_rules.cpp has no rule for variant "
                                             << v.name;
    EXPECT_FALSE(v.test_sections.empty()) << "attention/registry.cpp gives variant " << v.name << " no test sections";
  }
  for (const auto& name : variants_with_rules())
    EXPECT_NE(find_attention_variant(name), nullptr) << "a rule for variant " << name << ", which is not registered";
}

struct Case {
  std::string label;
  std::string yaml;  // the whole attention section
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.yaml; }  // names a failing case by its section

std::vector<Case> registry_cases() {
  std::vector<Case> out;
  for (const auto& v : attention_variants())
    for (size_t i = 0; i < v.test_sections.size(); ++i)
      out.push_back({v.name + "_" + std::to_string(i), attention_test_sections()[out.size()]});
  return out;
}

// The position encodings of the families, on heads of size D.
enum class Encoding { kRotateHalf, kInterleavedPartial, kAlibi };

struct Inputs {
  at::Tensor q, k, v;  // [B, H, T, D], [B, Hkv, T, D] x2, pre-encoding
  RotaryEmbedding rope;
  at::Tensor slopes;  // [H] for ALiBi, else undefined
  Encoding encoding;

  Inputs(Encoding e, int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t D, at::ScalarType dt, uint64_t seed)
      : rope(e == Encoding::kInterleavedPartial ? D - 2 : D, 10000.0, 2048, RopeScaling{},
             e == Encoding::kInterleavedPartial ? RopeLayout::kInterleaved : RopeLayout::kHalf),
        encoding(e) {
    at::manual_seed(seed);
    // Scaled so the softmax is neither flat nor one-hot.
    q = (at::randn({B, H, T, D}, at::kDouble) * 0.7).to(dt);
    k = (at::randn({B, Hkv, T, D}, at::kDouble) * 0.7).to(dt);
    v = at::randn({B, Hkv, T, D}, at::kDouble).to(dt);
    if (e == Encoding::kAlibi) slopes = alibi_slopes(H, 8.0);
  }
  RuleEncoding rule_encoding() const { return slopes.defined() ? RuleEncoding::alibi(slopes) : RuleEncoding(rope); }
};

std::string label(Encoding e) {
  return e == Encoding::kRotateHalf ? "llama rotate-half" : e == Encoding::kAlibi ? "mpt alibi" : "gptj interleaved";
}

// Float64: the kernels and the reference differ by rounding only. Float32: the online softmax and
// the rotations round at ~1e-7 relative; outputs are O(1), so a few hundred ulp.
double tolerance(at::ScalarType dt) { return dt == at::kDouble ? 1e-10 : 5e-5; }

struct CallResult {
  at::Tensor got, want;
};

// One forward call of `variant` (queries q at the end of keys k) and the rule's reference output.
CallResult call_and_reference(const AttentionVariant& variant, const AttentionSpec& spec, const Inputs& in,
                              const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t abs_q_start,
                              int64_t layer) {
  AttentionCall call;
  call.q = q;
  call.k = k;
  call.v = v;
  call.q_offset = k.size(2) - q.size(2);
  call.abs_q_start = abs_q_start;
  if (in.slopes.defined()) call.alibi_slopes = in.slopes;
  else call.rope = &in.rope;
  call.layer = layer;
  const RuleEncoding enc = in.rule_encoding();
  RuleCall rc{q, k, call.q_offset, layer, &enc, k.size(2), 1.0 / std::sqrt(static_cast<double>(q.size(3)))};
  const AttentionRule rule = (*variant_rule(spec.variant))(spec, rc);
  return {variant.forward(call), rule_attention_reference(q, k, v, rule, enc, rc.seq_len, rc.scale)};
}

double max_err(const CallResult& r) {
  return (r.got.to(at::kDouble) - r.want).abs().max().item<double>();
}

class EveryVariant : public ::testing::TestWithParam<Case> {};

const Encoding kEncodings[] = {Encoding::kRotateHalf, Encoding::kInterleavedPartial, Encoding::kAlibi};

TEST_P(EveryVariant, PrefillMatchesItsRule) {
  const AttentionSpec spec = AttentionSpec::parse(GetParam().yaml);
  ASSERT_NE(variant_rule(spec.variant), nullptr);
  auto variant = make_attention(spec);
  for (Encoding e : kEncodings) {
    for (at::ScalarType dt : {at::kDouble, at::kFloat}) {
      // GQA with 2 query heads per kv head; 6 heads (ALiBi slopes of a non-power of two) over 3.
      for (const auto& [H, Hkv, T, D] : {std::array<int64_t, 4>{4, 2, 37, 8}, std::array<int64_t, 4>{6, 3, 23, 16}}) {
        Inputs in(e, 2, H, Hkv, T, D, dt, 17 + static_cast<uint64_t>(T));
        for (int64_t layer : {0, 1}) {
          const CallResult r = call_and_reference(*variant, spec, in, in.q, in.k, in.v, 0, layer);
          ASSERT_EQ(r.got.sizes(), r.want.sizes());
          EXPECT_EQ(r.got.scalar_type(), dt);
          EXPECT_LT(max_err(r), tolerance(dt)) << GetParam().yaml << " " << label(e) << " H=" << H << " T=" << T
                                               << " layer " << layer << " " << at::toString(dt);
        }
      }
    }
  }
}

// Prefill then decode (and chunks) through the variant's cache policy: each call sees only what the
// cache kept, renumbered, and must equal the rule applied to exactly that.
TEST_P(EveryVariant, DecodeThroughItsCacheMatchesItsRule) {
  const AttentionSpec spec = AttentionSpec::parse(GetParam().yaml);
  auto variant = make_attention(spec);
  auto policy = variant->cache_policy();
  for (Encoding e : kEncodings) {
    Inputs in(e, 2, 4, 2, 41, 8, at::kDouble, 99);
    for (const std::vector<int64_t>& schedule : std::vector<std::vector<int64_t>>{{20, 1}, {7, 3, 1, 11, 2, 5}}) {
      LayerCache cache;
      for (int64_t fed = 0, c = 0; fed < in.q.size(2); ++c) {
        const int64_t n = std::min(schedule[std::min<size_t>(c, schedule.size() - 1)], in.q.size(2) - fed);
        cache.append(in.k.narrow(2, fed, n), in.v.narrow(2, fed, n));
        const CallResult r =
            call_and_reference(*variant, spec, in, in.q.narrow(2, fed, n), cache.keys(), cache.values(), fed, 1);
        EXPECT_LT(max_err(r), tolerance(at::kDouble))
            << GetParam().yaml << " " << label(e) << " schedule starting " << schedule[0] << " fed " << fed;
        policy->trim(cache);
        if (policy->max_size() >= 0) EXPECT_LE(cache.size(), policy->max_size()) << GetParam().yaml;
        fed += n;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryVariant, ::testing::ValuesIn(registry_cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.label; });

}  // namespace
}  // namespace lminf
