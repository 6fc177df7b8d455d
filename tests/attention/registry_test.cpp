// The attention section: limit_distance's three states, the resolved spec round trip, and the
// problems the loader reports before any weight is read.
#include "attention/registry.h"

#include <gtest/gtest.h>

#include "framework/config/spec.h"

namespace lminf {
namespace {

AttentionSpec parse(const std::string& yaml) {
  AttentionSpec spec;
  read_spec(YAML::Load(yaml), spec, SpecSource{}, "attention");
  return spec;
}

bool mentions(const std::vector<std::string>& problems, const std::string& text) {
  for (const auto& p : problems)
    if (p.find(text) != std::string::npos) return true;
  return false;
}

std::string all(const std::vector<std::string>& problems) {
  std::string s;
  for (const auto& p : problems) s += p + "\n";
  return s;
}

TEST(AttentionSpec, LimitDistanceUnsetNullOrValue) {
  EXPECT_EQ(parse("{variant: lambda, local_branch: 64}").limit(), std::optional<int64_t>(64));
  EXPECT_EQ(parse("{variant: lambda, local_branch: 64, limit_distance: 0}").limit(), std::optional<int64_t>(64));
  EXPECT_EQ(parse("{variant: lambda, local_branch: 64, limit_distance: 50}").limit(), std::optional<int64_t>(50));
  EXPECT_EQ(parse("{variant: lambda, local_branch: 64, limit_distance: null}").limit(), std::nullopt);
}

TEST(AttentionSpec, ResolvedSpecReadsBackWithTheSameMeaning) {
  for (const std::string y :
       {"{variant: lambda, limit_distance: null}", "{variant: lambda}",
        "{variant: topk, top_k: 3, top_k_from_layer: 0}", "{variant: streaming, recent_size: 64}"}) {
    AttentionSpec a = parse(y);
    AttentionSpec b = parse(to_yaml_string(write_spec(a)));
    EXPECT_TRUE(spec_equal(a, b)) << y;
    EXPECT_EQ(a.limit(), b.limit()) << y;
  }
}

TEST(AttentionProblems, InvalidValuesSayTheFix) {
  auto p = attention_spec_problems(parse("{variant: lambda, local_branch: 0}"));
  EXPECT_TRUE(
      mentions(p, "attention.local_branch=0 must be > 0 (use attention.variant: vanilla to disable the window)"))
      << all(p);
  p = attention_spec_problems(parse("{variant: lambda, global_branch: -1, limit_distance: -3}"));
  EXPECT_TRUE(mentions(p, "attention.global_branch=-1 must be >= 0")) << all(p);
  EXPECT_TRUE(mentions(p, "attention.limit_distance=-3 must be > 0")) << all(p);
  p = attention_spec_problems(parse("{variant: topk, top_k: 0, top_k_from_layer: 5, top_k_to_layer: 5}"));
  EXPECT_TRUE(mentions(p, "attention.top_k=0 must be > 0 (use attention.variant: lambda")) << all(p);
  EXPECT_TRUE(mentions(p, "attention.top_k_to_layer=5 must be > attention.top_k_from_layer (5)")) << all(p);
  p = attention_spec_problems(parse("{variant: streaming, recent_size: 0, start_size: -1}"));
  EXPECT_TRUE(mentions(p, "attention.recent_size=0 must be > 0")) << all(p);
  EXPECT_TRUE(mentions(p, "attention.start_size=-1 must be >= 0")) << all(p);
  p = attention_spec_problems(parse("{variant: lamda}"));
  EXPECT_TRUE(mentions(p, "\"lamda\" is not a variant (available: vanilla, lambda, topk, streaming, distance_limit)"))
      << all(p);
  EXPECT_THROW(make_attention(parse("{variant: lambda, local_branch: 0}")), Error);
}

TEST(AttentionProblems, ParametersTheVariantIgnores) {
  auto p = attention_spec_problems(parse("{variant: vanilla, local_branch: 128}"));
  EXPECT_TRUE(
      mentions(p, "attention.local_branch=128 is not used by variant vanilla (used by: lambda, topk, distance_limit)"))
      << all(p);
  p = attention_spec_problems(parse("{variant: lambda, top_k: 3, triangle_offset: 1.0, recent_size: 10}"));
  EXPECT_EQ(p.size(), 3u) << all(p);
  EXPECT_TRUE(mentions(p, "attention.top_k=3 is not used by variant lambda (used by: topk)")) << all(p);
  EXPECT_TRUE(mentions(p, "attention.triangle_offset=1.0 is not used by variant lambda (used by: distance_limit)"))
      << all(p);
  p = attention_spec_problems(parse("{variant: streaming, limit_distance: null}"));
  EXPECT_TRUE(mentions(p, "attention.limit_distance=null is not used by variant streaming")) << all(p);
  // Every variant with only its own parameters is fine.
  for (const std::string y :
       {"{variant: vanilla, block_size: 64}",
        "{variant: lambda, local_branch: 64, global_branch: 4, limit_distance: null}",
        "{variant: topk, local_branch: 64, top_k: 2, top_k_from_layer: 0, top_k_to_layer: 2, top_k_insert_at: 32}",
        "{variant: streaming, start_size: 2, recent_size: 60}",
        "{variant: distance_limit, limit_distance: 32, triangle_offset: 0.5, global_branch: 3, local_branch: 16}"}) {
    EXPECT_TRUE(attention_spec_problems(parse(y)).empty()) << y << ": " << all(attention_spec_problems(parse(y)));
    EXPECT_NO_THROW(make_attention(parse(y))) << y;
  }
}

TEST(AttentionProblems, ModelCombinations) {
  ModelConfig llama;
  llama.model_type = "llama";
  llama.n_layer = 2;
  llama.n_head = 4;
  llama.n_head_kv = 2;
  auto p = attention_problems(parse("{variant: topk, top_k_from_layer: 4}"), llama, 1);
  EXPECT_TRUE(mentions(p, "attention.top_k_from_layer=4 but the model has 2 layers")) << all(p);
  EXPECT_TRUE(attention_problems(parse("{variant: topk, top_k_from_layer: 1}"), llama, 2).empty());

  ModelConfig mistral = llama;
  mistral.model_type = "mistral";
  mistral.sliding_window = 256;
  p = attention_problems(parse("{variant: lambda, local_branch: 512}"), mistral, 1);
  EXPECT_TRUE(mentions(p, "attention.local_branch=512 exceeds the model's sliding_window (256")) << all(p);
  p = attention_problems(parse("{variant: streaming, recent_size: 300}"), mistral, 1);
  EXPECT_TRUE(mentions(p, "attention.recent_size=300 exceeds")) << all(p);
  EXPECT_TRUE(attention_problems(parse("{variant: lambda, local_branch: 256}"), mistral, 1).empty());

  ModelConfig other = llama;
  other.model_type = "falcon";  // a family no variant lists
  p = attention_problems(parse("{variant: lambda}"), other, 1);
  EXPECT_TRUE(mentions(p, "does not support model_type falcon")) << all(p);
  for (const char* family : {"mpt", "gptj"}) {
    other.model_type = family;
    for (const char* v : {"{variant: lambda}", "{variant: topk, top_k_from_layer: 0}", "{variant: streaming}",
                          "{variant: distance_limit}"})
      EXPECT_TRUE(attention_problems(parse(v), other, 1).empty()) << family << " " << v << ": "
                                                                  << all(attention_problems(parse(v), other, 1));
  }
}

}  // namespace
}  // namespace lminf
