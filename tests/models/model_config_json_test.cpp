// config.json through the families table: a Llama config's defaults and overrides, errors naming the
// file and the key, a missing folder (models/model_config_json.h).
#include <gtest/gtest.h>

#include "framework/core/error.h"
#include "framework/transformer/model_config.h"
#include "models/model_config_json.h"
#include "support/test_support.h"

namespace lminf {
namespace {

nlohmann::json base() {
  return {{"model_type", "llama"},      {"hidden_size", 64},         {"intermediate_size", 172},
          {"num_hidden_layers", 2},     {"num_attention_heads", 8},  {"num_key_value_heads", 4},
          {"vocab_size", 512},          {"rms_norm_eps", 1e-5},      {"tie_word_embeddings", true},
          {"bos_token_id", 1},          {"eos_token_id", 2}};
}

std::string error_of(const nlohmann::json& j) {
  try {
    model_config_from_json(j, "m/config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelConfig, ReadsDefaultsAndOverrides) {
  ModelConfig c = model_config_from_json(base(), "x");
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.group_size(), 2);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  auto j = base();
  j["head_dim"] = 16;
  j["eos_token_id"] = {2, 7};
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  j["sliding_window"] = 4096;
  c = model_config_from_json(j, "x");
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(c.rope_scaling.type, "linear");
  EXPECT_EQ(*c.sliding_window, 4096);
  // to_json round-trips.
  EXPECT_EQ(model_config_to_json(model_config_from_json(model_config_to_json(c), "y")), model_config_to_json(c));
}

TEST(ModelConfig, ErrorsNameFileAndKey) {
  auto j = base();
  j["model_type"] = "gpt2";
  EXPECT_NE(error_of(j).find("model_type \"gpt2\" is not supported"), std::string::npos);
  j = base();
  j["num_key_value_heads"] = 3;
  EXPECT_NE(error_of(j).find("num_key_value_heads"), std::string::npos);
  j = base();
  j.erase("hidden_size");
  EXPECT_NE(error_of(j).find("hidden_size"), std::string::npos);
  j = base();
  j["hidden_act"] = "gelu";
  EXPECT_NE(error_of(j).find("hidden_act"), std::string::npos);
  j = base();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  EXPECT_NE(error_of(j).find("original_max_position_embeddings"), std::string::npos);
  EXPECT_NE(error_of(j).find("m/config.json"), std::string::npos);
}

TEST(ModelConfig, MissingFolderAndFile) {
  try {
    load_model_config("/nonexistent/model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model"), std::string::npos);
  }
}

// The embedded model's config.json was written by the pretrain task: reading and writing it again gives
// the same bytes (the writer's keys and value types are unchanged).
TEST(ModelConfig, WritesTheEmbeddedModelsConfigByteForByte) {
  const std::filesystem::path file = lminf::testing::source_dir() / "embedded" / "lminf-info-1m" / "config.json";
  EXPECT_EQ(model_config_to_json(load_model_config(file)).dump(2) + "\n", lminf::testing::read_text(file));
}

// Hostile config.json values: each refused naming the file and the key, never reaching an allocation
// or nlohmann's type_error text.
TEST(ModelConfig, HostileValuesNameFileAndKey) {
  struct Case {
    const char* key;
    nlohmann::json value;
    const char* expected;  // in the message, after "m/config.json: "
  };
  const std::vector<Case> cases = {
      {"hidden_size", 1000000000000LL, "\"hidden_size\" must be in [1, "},
      {"intermediate_size", -4, "\"intermediate_size\" must be in [1, "},
      {"num_hidden_layers", 1LL << 40, "\"num_hidden_layers\" must be in [1, "},
      {"vocab_size", 1LL << 40, "\"vocab_size\" must be in [1, "},
      {"max_position_embeddings", 1LL << 50, "\"max_position_embeddings\" must be in [1, "},
      {"vocab_size", 18446744073709551615ULL, "\"vocab_size\" is too large"},
      {"bos_token_id", 1000000, "\"bos_token_id\" 1000000 is outside the vocabulary (vocab_size 512"},
      {"bos_token_id", "x", "\"bos_token_id\" must be an integer id or null"},
      {"eos_token_id", {2, 512}, "\"eos_token_id\" 512 is outside the vocabulary"},
      {"eos_token_id", {"a"}, "\"eos_token_id\" must be an integer id"},
      {"torch_dtype", {{"a", {{"b", 1}}}}, "key \"torch_dtype\" has the wrong type"},
      {"rope_theta", "big", "key \"rope_theta\" has the wrong type"},
      {"sliding_window", "wide", "missing or non-integer \"sliding_window\""},
      {"rope_scaling", {{"rope_type", 7}}, "rope_scaling.rope_type must be a string"},
      {"rope_scaling", {{"type", "linear"}, {"factor", "2"}}, "rope_scaling.factor must be a finite number"},
      {"rope_scaling", {{"type", "linear"}, {"factor", 1e300}}, "rope_scaling.factor must be <= "},
      {"rope_scaling",
       {{"type", "yarn"}, {"factor", 2.0}, {"original_max_position_embeddings", "x"}},
       "rope_scaling.original_max_position_embeddings must be an integer"},
      {"rope_scaling",
       {{"type", "llama3"}, {"factor", 2.0}, {"original_max_position_embeddings", 64}, {"low_freq_factor", {1}}},
       "rope_scaling.low_freq_factor must be a finite number"},
      {"rope_scaling", {{"type", "yarn"}, {"factor", 2.0}, {"beta_fast", -1}}, "rope_scaling.beta_fast must be > 0"},
      {"rope_scaling", {{"type", "yarn"}, {"factor", 2.0}, {"truncate", 3}}, "rope_scaling: key \"truncate\""},
  };
  for (const Case& c : cases) {
    auto j = base();
    j[c.key] = c.value;
    const std::string e = error_of(j);
    EXPECT_NE(e.find(std::string("m/config.json: ") + c.expected), std::string::npos) << c.key << ": " << e;
    EXPECT_EQ(e.find("json.exception"), std::string::npos) << e;
  }
}

// A family's own keys get the same treatment (MPT's expansion_ratio times d_model).
TEST(ModelConfig, HostileFamilyKeys) {
  const nlohmann::json mpt = {{"model_type", "mpt"}, {"d_model", 64}, {"n_heads", 4}, {"n_layers", 2},
                              {"vocab_size", 100}, {"expansion_ratio", 1e300}, {"attn_config", {{"alibi", true}}}};
  const std::string e = error_of(mpt);
  EXPECT_NE(e.find("m/config.json: expansion_ratio"), std::string::npos) << e;
}

}  // namespace
}  // namespace lminf
