// The MPT and GPT-J families on tiny random checkpoints: every attention variant against the plain
// float64 reference of that family (tests/support/reference_families), one prefill against prefill
// then decode and chunked streaming through each variant's cache, generation with a KV cache against
// cache-free forwards, and the config.json options each family reads or rejects.
#include <gtest/gtest.h>

#include <functional>
#include <iostream>

#include "attention/registry.h"
#include "attention/reference/rule_reference.h"
#include "attention/reference/variant_rules.h"
#include "framework/transformer/alibi.h"
#include "framework/core/error.h"
#include "framework/transformer/rope.h"
#include "framework/config/spec.h"
#include "models/model_config_json.h"
#include "models/causal_lm.h"
#include "models/generate.h"
#include "models/random_checkpoint.h"
#include "support/reference_families.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::ReferenceRule;
using lminf::testing::TempDir;

std::vector<int64_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor t = at::randint(vocab, {n}, gen, at::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
}

AttentionSpec spec(const std::string& yaml) {
  AttentionSpec s;
  read_spec(YAML::Load(yaml), s, SpecSource{}, "attention");
  return s;
}

struct Family {
  std::string label;
  ModelConfig config;
};

// Awkward tiny configurations: MPT with 6 heads (slopes of a non-power-of-two head count), no biases
// and clip_qkv; MPT with biases and 4 heads; GPT-J with rotary_dim 6 of head_dim 16 and gelu_new;
// GPT-J with full rotary and exact gelu.
std::vector<Family> families() {
  std::vector<Family> f;
  ModelConfig mpt = family_preset("tiny", "mpt");
  mpt.hidden_size = 48;
  mpt.n_head = mpt.n_head_kv = 6;
  mpt.head_dim = 8;
  mpt.intermediate_size = 96;
  mpt.vocab_size = 97;
  mpt.clip_qkv = 1.5;
  f.push_back({"mpt_6heads_clip", mpt});
  ModelConfig mpt_b = family_preset("tiny", "mpt");
  mpt_b.no_bias = false;
  mpt_b.alibi_bias_max = 4.0;
  mpt_b.vocab_size = 101;
  f.push_back({"mpt_bias", mpt_b});
  ModelConfig gj = family_preset("tiny", "gptj");
  gj.rotary_dim = 6;
  gj.vocab_size = 97;
  f.push_back({"gptj_rot6of16", gj});
  ModelConfig gj_full = family_preset("tiny", "gptj");
  gj_full.rotary_dim = 0;  // the whole head
  gj_full.hidden_act = "gelu";
  f.push_back({"gptj_full_rotary_gelu", gj_full});
  return f;
}

struct Loaded {
  TempDir dir;
  ModelConfig config;
  lminf::testing::WeightMap weights;
  std::unique_ptr<CausalLM> model;
};

std::unique_ptr<Loaded> load(const Family& f, at::ScalarType dtype = at::kFloat) {
  auto l = std::make_unique<Loaded>();
  auto stored = write_random_model(l->dir.path(), f.config, 7, 2);
  l->config = load_model_config(l->dir.path());
  l->weights = lminf::testing::to_map(stored);
  LoadOptions o;
  o.dtype = dtype;
  l->model = load_model(l->dir.path(), l->config, o);
  return l;
}

at::Tensor reference_logits(const Loaded& l, const std::vector<int64_t>& ids, const ReferenceRule& rule = nullptr) {
  return l.config.model_type == "mpt" ? lminf::testing::reference_mpt_logits(l.weights, l.config, ids, rule)
                                      : lminf::testing::reference_gptj_logits(l.weights, l.config, ids, rule);
}

at::Tensor model_logits(CausalLM& m, const AttentionVariant& attn, const std::vector<int64_t>& ids) {
  at::Tensor x = at::tensor(ids, at::kLong).unsqueeze(0);
  return m.logits(m.forward(x, nullptr, ForwardContext{&attn, nullptr}))[0].to(at::kDouble);
}

TEST(Families, ConfigRoundTripsThroughTheFamilysOwnKeys) {
  for (const auto& f : families()) {
    TempDir d;
    write_random_model(d.path(), f.config, 1);
    const std::string text = lminf::testing::read_text(d.path() / "config.json");
    ModelConfig back = load_model_config(d.path());
    EXPECT_EQ(back.model_type, f.config.model_type);
    EXPECT_EQ(back.hidden_size, f.config.hidden_size) << f.label;
    EXPECT_EQ(back.n_head, f.config.n_head) << f.label;
    EXPECT_EQ(back.intermediate_size, f.config.intermediate_size) << f.label;
    EXPECT_EQ(back.rotary_dims(), f.config.rotary_dims()) << f.label;
    EXPECT_EQ(back.clip_qkv, f.config.clip_qkv) << f.label;
    EXPECT_EQ(back.no_bias, f.config.no_bias) << f.label;
    if (f.config.model_type == "mpt") {
      EXPECT_NE(text.find("\"d_model\""), std::string::npos);
      EXPECT_NE(text.find("\"expansion_ratio\""), std::string::npos);
    } else {
      EXPECT_NE(text.find("\"n_embd\""), std::string::npos);
      EXPECT_NE(text.find("\"rotary_dim\""), std::string::npos);
    }
  }
}

TEST(Families, VanillaMatchesFloat64Reference) {
  for (const auto& f : families()) {
    auto l = load(f);
    auto attn = make_attention(spec("{variant: vanilla, block_size: 7, key_block_size: 11}"));
    auto ids = random_ids(53, l->config.vocab_size, 3);
    const double err = (model_logits(*l->model, *attn, ids) - reference_logits(*l, ids)).abs().max().item<double>();
    EXPECT_LT(err, 2e-4) << f.label;
    std::cout << f.label << ": vanilla max |logit - float64 reference| = " << err << "\n";
  }
}

// Every registered variant on each of its registry test sections, with the rule of
// attention/reference/variant_rules.h in every layer of the family's float64 reference.
TEST(Families, EveryVariantMatchesFloat64Reference) {
  for (const auto& f : families()) {
    auto l = load(f);
    RotaryEmbedding rope = RotaryEmbedding::for_model(l->config);
    const bool alibi = l->config.model_type == "mpt";
    at::Tensor slopes = alibi_slopes(l->config.n_head, l->config.alibi_bias_max);
    RuleEncoding enc = alibi ? RuleEncoding::alibi(slopes) : RuleEncoding(rope);
    for (const std::string& yaml : attention_test_sections()) {
      const AttentionSpec as = spec(yaml);
      const VariantRule* variant_rule_of = variant_rule(as.variant);
      ASSERT_NE(variant_rule_of, nullptr) << as.variant;
      auto attn = make_attention(as);
      // T = 20: between L and 2L of the lambda cases (the original MPT path crashes there); T = 41: beyond.
      for (int64_t T : {20, 41}) {
        auto ids = random_ids(T, l->config.vocab_size, static_cast<uint64_t>(T));
        ReferenceRule rule = [&](const at::Tensor& q, const at::Tensor& k, int64_t layer) {
          return (*variant_rule_of)(as, RuleCall{q, k, 0, layer, &enc, T, 1.0 / std::sqrt(double(q.size(3)))});
        };
        const double err =
            (model_logits(*l->model, *attn, ids) - reference_logits(*l, ids, rule)).abs().max().item<double>();
        EXPECT_LT(err, 2e-4) << f.label << " " << yaml << " T=" << T;
        if (T == 41) std::cout << f.label << " " << yaml << ": max err " << err << "\n";
      }
    }
  }
}

TEST(Families, PrefillEqualsDecodeAndChunkedStreaming) {
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"{variant: vanilla}", -1},
      {"{variant: lambda, local_branch: 12, global_branch: 3, block_size: 7, key_block_size: 5}", 15},
      {"{variant: lambda, local_branch: 9, global_branch: 2, limit_distance: 6}", 11},
      {"{variant: streaming, start_size: 3, recent_size: 10, block_size: 8}", 12},
      {"{variant: distance_limit, limit_distance: 8, triangle_offset: 0.3, local_branch: 8, global_branch: 2}", -1},
  };
  for (const auto& f : families()) {
    auto l = load(f);
    at::manual_seed(5);
    at::Tensor x = at::randint(l->config.vocab_size, {2, 45}, at::kLong);
    for (const auto& [yaml, bound] : cases) {
      auto attn = make_attention(spec(yaml));
      ForwardContext ctx{attn.get(), nullptr};
      at::Tensor full = l->model->forward(x, nullptr, ctx);
      for (const std::vector<int64_t>& sched : std::vector<std::vector<int64_t>>{{1}, {30, 1}, {7}, {20}}) {
        KVCache cache = l->model->new_cache(*attn);
        std::vector<at::Tensor> parts;
        int64_t largest = 0;
        for (size_t c = 0, fed = 0; static_cast<int64_t>(fed) < 45; ++c) {
          const int64_t n = std::min<int64_t>(sched[std::min(c, sched.size() - 1)], 45 - static_cast<int64_t>(fed));
          parts.push_back(l->model->forward(x.narrow(1, static_cast<int64_t>(fed), n), &cache, ctx));
          largest = std::max(largest, cache.size());
          fed += static_cast<size_t>(n);
        }
        const double err = (at::cat(parts, 1) - full).abs().max().item<double>();
        EXPECT_LT(err, 2e-4) << f.label << " " << yaml << " schedule " << sched[0];
        if (bound >= 0) EXPECT_LE(largest, bound) << f.label << " " << yaml;
      }
    }
  }
}

TEST(Families, GenerationWithCacheEqualsCacheFreeArgmax) {
  for (const auto& f : families()) {
    auto l = load(f);
    for (const std::string yaml : {"{variant: vanilla}", "{variant: lambda, local_branch: 6, global_branch: 2}"}) {
      auto attn = make_attention(spec(yaml));
      GenerateOptions g;
      g.max_new_tokens = 14;
      std::vector<int64_t> prompt = {1, 17, 33, 5};
      auto out = generate(*l->model, *attn, prompt, g);
      ASSERT_EQ(out.size(), 14u);
      std::vector<int64_t> seq = prompt;
      for (int64_t tok : out) {
        at::Tensor lg = model_logits(*l->model, *attn, seq);
        EXPECT_EQ(lg[static_cast<int64_t>(seq.size()) - 1].argmax().item<int64_t>(), tok) << f.label << " " << yaml;
        seq.push_back(tok);
      }
    }
  }
}

TEST(Families, BFloat16CloseToFloat32) {
  for (const auto& f : families()) {
    auto l32 = load(f);
    auto l16 = load(f, at::kBFloat16);
    auto attn = make_attention(spec("{variant: lambda, local_branch: 12, global_branch: 3}"));
    auto ids = random_ids(40, f.config.vocab_size, 2);
    at::Tensor a = model_logits(*l32->model, *attn, ids), b = model_logits(*l16->model, *attn, ids);
    EXPECT_LT((a - b).abs().mean().item<double>(), 0.1) << f.label;
  }
}

// ---- config.json options ----------------------------------------------------------------------

std::string config_error(const nlohmann::json& j) {
  return lminf::testing::error_of([&] { model_config_from_json(j, "DIR/config.json"); });
}

nlohmann::json mpt_json() {
  return {{"model_type", "mpt"},   {"d_model", 64},   {"n_heads", 4},       {"n_layers", 2},
          {"expansion_ratio", 4},  {"vocab_size", 50}, {"max_seq_len", 128}, {"no_bias", true},
          {"attn_config", {{"alibi", true}, {"alibi_bias_max", 8}, {"clip_qkv", nullptr}, {"qk_ln", false}}}};
}

TEST(Families, MptConfigReadAndUnsupportedOptionsRejected) {
  ModelConfig c = model_config_from_json(mpt_json(), "x");
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.alibi);
  auto with = [](const char* key, nlohmann::json v) {
    nlohmann::json j = mpt_json();
    j["attn_config"][key] = v;
    return j;
  };
  auto has = [](const std::string& e, const std::string& s) { return e.find(s) != std::string::npos; };
  std::string e = config_error(with("qk_ln", true));
  EXPECT_TRUE(has(e, "DIR/config.json") && has(e, "attn_config.qk_ln")) << e;
  e = config_error(with("alibi", false));
  EXPECT_TRUE(has(e, "attn_config.alibi")) << e;
  e = config_error(with("prefix_lm", true));
  EXPECT_TRUE(has(e, "attn_config.prefix_lm")) << e;
  e = config_error(with("softmax_scale", 0.5));
  EXPECT_TRUE(has(e, "attn_config.softmax_scale")) << e;
  e = config_error(with("attn_impl", "something"));
  EXPECT_TRUE(has(e, "attn_config.attn_impl")) << e;
  EXPECT_TRUE(config_error(with("attn_impl", "flash")).empty());
  nlohmann::json j = mpt_json();
  j["logit_scale"] = 2.0;
  EXPECT_TRUE(has(config_error(j), "logit_scale"));
  j = mpt_json();
  j["expansion_ratio"] = 1.01;
  EXPECT_TRUE(has(config_error(j), "expansion_ratio"));
}

TEST(Families, GptjConfigReadAndRejected) {
  nlohmann::json j = {{"model_type", "gptj"}, {"n_embd", 64},     {"n_head", 4},         {"n_layer", 2},
                      {"rotary_dim", 8},      {"vocab_size", 50}, {"n_positions", 256}, {"n_inner", nullptr}};
  ModelConfig c = model_config_from_json(j, "x");
  EXPECT_EQ(c.intermediate_size, 256);
  EXPECT_EQ(c.rotary_dims(), 8);
  EXPECT_TRUE(c.rope_interleaved);
  EXPECT_EQ(c.hidden_act, "gelu_new");
  j["rotary_dim"] = 7;
  EXPECT_NE(config_error(j).find("rotary_dim"), std::string::npos);
  j["rotary_dim"] = 8;
  j["activation_function"] = "relu";
  EXPECT_NE(config_error(j).find("activation_function"), std::string::npos);
}

}  // namespace
}  // namespace lminf
