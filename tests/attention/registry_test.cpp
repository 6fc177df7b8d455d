// The attention section: limit_distance's three states, the resolved spec round trip, keys of other
// variants and unknown keys at read time, and the problems the loader reports before any weight is read.
#include "attention/registry.h"

#include <gtest/gtest.h>

#include "framework/transformer/model_config.h"

#include <algorithm>

#include "attention/variants/lambda.h"
#include "framework/config/spec.h"
#include "framework/core/format.h"
#include "support/test_support.h"

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

// The error of reading `yaml` ("" when it reads).
std::string read_error(const std::string& yaml) {
  return lminf::testing::error_of([&] { parse(yaml); });
}

std::string all(const std::vector<std::string>& problems) {
  std::string s;
  for (const auto& p : problems) s += p + "\n";
  return s;
}

std::optional<int64_t> lambda_limit(const std::string& yaml) { return parse(yaml).params<LambdaParams>().limit(); }

TEST(AttentionSpec, LimitDistanceUnsetNullOrValue) {
  EXPECT_EQ(lambda_limit("{variant: lambda, local_branch: 64}"), std::optional<int64_t>(64));
  EXPECT_EQ(lambda_limit("{variant: lambda, local_branch: 64, limit_distance: 0}"), std::optional<int64_t>(64));
  EXPECT_EQ(lambda_limit("{variant: lambda, local_branch: 64, limit_distance: 50}"), std::optional<int64_t>(50));
  EXPECT_EQ(lambda_limit("{variant: lambda, local_branch: 64, limit_distance: null}"), std::nullopt);
}

TEST(AttentionSpec, ResolvedSpecReadsBackWithTheSameMeaning) {
  for (const std::string y :
       {"{variant: lambda, limit_distance: null}", "{variant: lambda}",
        "{variant: topk, top_k: 3, top_k_from_layer: 0}", "{variant: streaming, recent_size: 64}"}) {
    AttentionSpec a = parse(y);
    AttentionSpec b = parse(to_yaml_string(write_spec(a)));
    EXPECT_TRUE(spec_equal(a, b)) << y;
    if (a.variant == "lambda") EXPECT_EQ(a.params<LambdaParams>().limit(), b.params<LambdaParams>().limit()) << y;
  }
  // Every test section of every variant, and the defaults of each variant, round-trip; the resolved
  // section holds exactly the variant's keys.
  std::vector<std::string> sections = attention_test_sections();
  for (const auto& v : attention_variants()) sections.push_back("{variant: " + v.name + "}");
  for (const auto& y : sections) {
    AttentionSpec a = parse(y);
    YAML::Node written = write_spec(a);
    AttentionSpec b = parse(to_yaml_string(written));
    EXPECT_TRUE(spec_equal(a, b)) << y;
    // variant, block_size, key_block_size, cache, then the variant's keys
    EXPECT_EQ(written.size(), 4 + attention_variant_keys(*find_attention_variant(a.variant)).size()) << y;
  }
  EXPECT_FALSE(spec_equal(parse("{variant: lambda}"), parse("{variant: topk}")));
  EXPECT_FALSE(spec_equal(parse("{variant: lambda}"), parse("{variant: lambda, local_branch: 5}")));
  EXPECT_FALSE(spec_equal(parse("{variant: vanilla}"), parse("{variant: streaming}")));
}

// Every integer of the section is a size or distance in tokens: none past kMaxPositions, so sums of
// them (n_init + n_local, ...) cannot overflow. Checked for every variant and the cache section.
TEST(AttentionProblems, SizesBoundedByTheLongestSequence) {
  const std::string huge = "9223372036854775807";
  auto p = attention_spec_problems(parse("{variant: infllm, n_init: " + huge + "}"));
  EXPECT_TRUE(mentions(p, "attention.n_init=" + huge + " must be at most " + std::to_string(kMaxPositions))) << all(p);
  p = attention_spec_problems(parse("{variant: vanilla, block_size: 1099511627776}"));
  EXPECT_TRUE(mentions(p, "attention.block_size=1099511627776 must be at most")) << all(p);
  p = attention_spec_problems(parse("{variant: lambda, cache: {policy: h2o, recent_size: " + huge + "}}"));
  EXPECT_TRUE(mentions(p, "attention.cache.recent_size=" + huge + " must be at most")) << all(p);
  EXPECT_TRUE(attention_spec_problems(parse("{variant: lambda, local_branch: " + std::to_string(kMaxPositions) + "}")).empty());
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
  // A misspelt variant is refused when read, with did-you-mean; a variant set in code, when checked.
  std::string e = read_error("{variant: lamda}");
  const std::string names = join_list(attention_variant_names());  // every registered variant, in order
  EXPECT_NE(e.find("attention.variant: \"lamda\" is not one of: " + names + " (did you mean \"lambda\"?)"),
            std::string::npos)
      << e;
  AttentionSpec in_code;
  in_code.variant = "lamda";
  p = attention_spec_problems(in_code);
  EXPECT_TRUE(mentions(p, "\"lamda\" is not a variant (available: " + names + ")")) << all(p);
  // The position-remapping baselines.
  p = attention_spec_problems(parse("{variant: self_extend, group_size: 0, neighbor_window: 0}"));
  EXPECT_TRUE(mentions(p, "attention.group_size=0 must be >= 1")) << all(p);
  EXPECT_TRUE(mentions(p, "attention.neighbor_window=0 must be >= 1")) << all(p);
  p = attention_spec_problems(parse("{variant: rerope, window: 0, leaky_k: 1, log_scale_base: 1}"));
  EXPECT_TRUE(mentions(p, "attention.window=0 must be >= 1")) << all(p);
  EXPECT_TRUE(mentions(p, "attention.leaky_k=1 must be a number > 1")) << all(p);
  EXPECT_TRUE(mentions(p, "attention.log_scale_base=1 must be >= 2")) << all(p);
  p = attention_spec_problems(parse("{variant: dca, chunk_size: 8, local_window: 8}"));
  EXPECT_TRUE(mentions(p, "attention.chunk_size=8 must exceed attention.local_window=8")) << all(p);
  p = attention_spec_problems(parse("{variant: dca, local_window: -1}"));
  EXPECT_TRUE(mentions(p, "attention.local_window=-1 must be >= 0")) << all(p);
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
  // Reported with the invalid values, all at once, each where it was written.
  p = attention_spec_problems(parse("{variant: streaming, local_branch: 64, recent_size: 0}"));
  EXPECT_EQ(p.size(), 2u) << all(p);
  EXPECT_TRUE(mentions(p, "<yaml>:1:22: attention.local_branch=64 is not used by variant streaming")) << all(p);
  // A key no variant reads: refused when read, with did-you-mean over every variant's keys.
  std::string e = read_error("{variant: lambda, recent_sise: 10}");
  EXPECT_NE(e.find("attention.recent_sise: unknown key \"recent_sise\" (did you mean \"recent_size\"?"),
            std::string::npos)
      << e;
  // With a misspelt variant only the variant is reported.
  e = read_error("{variant: lamda, local_branch: 10}");
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 0) << e;
  EXPECT_TRUE(parse("{variant: lambda, local_branch: 10}").ignored_keys().empty());
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
  llama.head_dim = 16;  // rotary on every feature (a config read from config.json always has a head_dim)
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
  other.model_type = "falcon";  // a family without a relative position encoding: no rotated features, no ALiBi
  other.head_dim = 0;
  other.rotary_dim = 0;
  for (const char* v : {"{variant: lambda}", "{variant: topk, top_k_from_layer: 0}", "{variant: streaming}",
                        "{variant: distance_limit}"}) {
    p = attention_problems(parse(v), other, 1);
    EXPECT_TRUE(mentions(p, "needs rotary embeddings or ALiBi biases, which model_type falcon does not have"))
        << v << ": " << all(p);
  }
  EXPECT_TRUE(attention_problems(parse("{variant: vanilla}"), other, 1).empty());
  other = llama;
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
