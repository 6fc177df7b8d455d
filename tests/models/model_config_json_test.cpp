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

}  // namespace
}  // namespace lminf
