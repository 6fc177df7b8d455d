// The `attention.cache:` section: reading (did-you-mean for a misspelt policy, keys of the other
// policy refused, values checked), the resolved spec round trip, the help text, the policies built
// over each variant's own cache, and the combinations refused before any weight is read.
#include <gtest/gtest.h>

#include "attention/registry.h"
#include "framework/config/spec.h"
#include "framework/transformer/kv_eviction.h"
#include "support/test_support.h"

namespace lminf {
namespace {

AttentionSpec parse(const std::string& yaml) { return AttentionSpec::parse(yaml); }

std::string all(const std::vector<std::string>& problems) {
  std::string s;
  for (const auto& p : problems) s += p + "\n";
  return s;
}

TEST(CacheSpec, MisspeltPolicyGetsDidYouMean) {
  const std::string e = lminf::testing::error_of([] { parse("{variant: vanilla, cache: {policy: h20}}"); });
  EXPECT_NE(e.find("attention.cache.policy: \"h20\" is not one of: none, h2o, snapkv (did you mean \"h2o\"?)"),
            std::string::npos)
      << e;
  const std::string k = lminf::testing::error_of([] { parse("{cache: {policy: snapkv, windw_size: 8}}"); });
  EXPECT_NE(k.find("did you mean \"window_size\""), std::string::npos) << k;
}

TEST(CacheSpec, KeysOfAnotherPolicyAndInvalidValuesAreProblems) {
  auto p = attention_spec_problems(parse("{cache: {policy: h2o, hh_size: 8, window_size: 16}}"));
  ASSERT_EQ(p.size(), 1u) << all(p);
  EXPECT_NE(p[0].find("attention.cache.window_size is not read by attention.cache.policy: h2o (read by: snapkv)"),
            std::string::npos)
      << p[0];
  p = attention_spec_problems(parse("{cache: {hh_size: 8}}"));  // policy none reads nothing
  EXPECT_EQ(p.size(), 1u) << all(p);
  p = attention_spec_problems(parse("{cache: {policy: snapkv, window_size: 16, max_capacity_prompt: 16, kernel_size: 4}}"));
  EXPECT_EQ(p.size(), 2u) << all(p);
  EXPECT_NE(all(p).find("attention.cache.window_size=16 must be < attention.cache.max_capacity_prompt=16"),
            std::string::npos);
  EXPECT_NE(all(p).find("attention.cache.kernel_size=4 must be odd"), std::string::npos);
  const std::string e = lminf::testing::error_of([] { parse("{cache: {policy: h2o, recent_size: 0}}"); });
  EXPECT_NE(e.find("attention.cache.recent_size: must be >= 1"), std::string::npos) << e;
}

TEST(CacheSpec, ResolvedSpecHoldsTheChosenPolicysKeysAndReadsBack) {
  for (const std::string y : {"{variant: lambda, local_branch: 64, cache: {policy: h2o, hh_size: 8, recent_size: 16}}",
                              "{cache: {policy: snapkv, window_size: 4, pooling: maxpool}}", "{variant: streaming}"}) {
    const AttentionSpec a = parse(y);
    const YAML::Node w = write_spec(a);
    const AttentionSpec b = parse(to_yaml_string(w));
    EXPECT_TRUE(spec_equal(a, b)) << y;
    EXPECT_TRUE(attention_spec_problems(b).empty()) << y << ": " << all(attention_spec_problems(b));
    EXPECT_EQ(static_cast<bool>(w["cache"]["hh_size"]), a.cache.policy == "h2o") << y;
    EXPECT_EQ(static_cast<bool>(w["cache"]["window_size"]), a.cache.policy == "snapkv") << y;
  }
}

TEST(CacheSpec, HelpTextListsEveryPolicysKeys) {
  const std::string help = describe_spec<AttentionSpec>("attention");
  for (const std::string k : {"attention.cache.policy", "attention.cache.hh_size", "attention.cache.recent_size",
                              "attention.cache.window_size", "attention.cache.max_capacity_prompt",
                              "attention.cache.kernel_size", "attention.cache.pooling"})
    EXPECT_NE(help.find(k), std::string::npos) << k << " missing from\n" << help;
  EXPECT_NE(help.find("attention.cache.policy: snapkv reads"), std::string::npos) << help;
}

TEST(CacheSpec, PolicyProtectsTheVariantsFirstTokens) {
  auto policy = make_attention(parse("{variant: lambda, local_branch: 20, global_branch: 3, "
                                     "cache: {policy: h2o, hh_size: 4, recent_size: 6}}"))
                    ->cache_policy();
  EXPECT_EQ(policy->max_size(), 3 + 4 + 6);
  EXPECT_NE(dynamic_cast<const H2OPolicy*>(policy.get()), nullptr);
  policy = make_attention(parse("{variant: streaming, start_size: 2, recent_size: 30, "
                                "cache: {policy: snapkv, window_size: 4, max_capacity_prompt: 12}}"))
               ->cache_policy();
  EXPECT_EQ(policy->max_size_for_chunks(4), 2 + 12);
  EXPECT_EQ(make_attention(parse("{variant: vanilla}"))->cache_policy()->max_size(), -1);
  // The variant keeps its name: outputs and logs say which variant ran.
  EXPECT_EQ(make_attention(parse("{variant: lambda, cache: {policy: h2o}}"))->name(), "lambda");
}

TEST(CacheSpec, CombinationsThatMakeNoSenseAreRefused) {
  auto p = attention_spec_problems(parse("{variant: topk, cache: {policy: h2o}}"));
  ASSERT_EQ(p.size(), 1u) << all(p);
  EXPECT_NE(p[0].find("attention.cache.policy: h2o needs the attention mass of the keys, which attention.variant "
                      "topk does not report"),
            std::string::npos)
      << p[0];
  p = attention_spec_problems(parse("{variant: lambda, local_branch: 16, cache: {policy: h2o, hh_size: 8, recent_size: 9}}"));
  ASSERT_EQ(p.size(), 1u) << all(p);
  EXPECT_NE(p[0].find("attention.cache.hh_size + recent_size = 17 exceeds the 16 entries attention.variant lambda"),
            std::string::npos)
      << p[0];
  p = attention_spec_problems(parse("{variant: streaming, recent_size: 16, cache: {policy: snapkv, window_size: 4, "
                                    "max_capacity_prompt: 16}}"));
  EXPECT_NE(all(p).find("attention.cache.max_capacity_prompt = 16 exceeds the 15 entries"), std::string::npos) << all(p);
  EXPECT_THROW(make_attention(parse("{variant: topk, cache: {policy: snapkv}}")), Error);
  EXPECT_TRUE(attention_spec_problems(parse("{variant: distance_limit, cache: {policy: snapkv}}")).empty());
}

}  // namespace
}  // namespace lminf
