// The families table (models/model_families.h) as a contract every family keeps: its config round-trips
// through its own config.json keys, its random checkpoint holds exactly the tensors its loader reads,
// and its parameter count is that checkpoint's size. A new family that forgets one fails here.
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <set>

#include "models/causal_lm.h"
#include "models/model_config_json.h"
#include "models/model_families.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::TempDir;

TEST(ModelFamilies, NamesAndModelTypesAreUnique) {
  std::set<std::string> names, types;
  for (const ModelFamily& f : model_families()) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_FALSE(f.model_types.empty()) << f.name;
    for (const std::string& t : f.model_types) {
      EXPECT_TRUE(types.insert(t).second) << t;
      EXPECT_EQ(&find_family(t, "x"), &f) << t;
    }
    EXPECT_EQ(&family_named(f.name), &f);
  }
  EXPECT_EQ(family_names().size(), model_families().size());
}

TEST(ModelFamilies, UnknownModelTypeAndFamilyListTheSupportedOnes) {
  const std::string e = lminf::testing::error_of([] { find_family("gpt2", "DIR/config.json"); });
  EXPECT_NE(e.find("DIR/config.json: model_type \"gpt2\" is not supported (supported: "), std::string::npos) << e;
  for (const ModelFamily& f : model_families())
    for (const std::string& t : f.model_types) EXPECT_NE(e.find(t), std::string::npos) << e;
  const std::string n = lminf::testing::error_of([] { family_named("falcon"); });
  EXPECT_NE(n.find("unknown model family \"falcon\""), std::string::npos) << n;
}

TEST(ModelFamilies, ConfigRoundTripsThroughTheFamilysKeys) {
  for (const ModelFamily& f : model_families()) {
    const ModelConfig c = family_preset("tiny", f.name);
    EXPECT_EQ(&find_family(c.model_type, "x"), &f) << f.name;
    validate_model_config(c, f.name);
    const nlohmann::json j = model_config_to_json(c);
    EXPECT_EQ(j.at("model_type"), c.model_type) << f.name;
    const ModelConfig back = model_config_from_json(j, "x");
    EXPECT_EQ(model_config_to_json(back), j) << f.name;
    EXPECT_EQ(back.hidden_size, c.hidden_size) << f.name;
    EXPECT_EQ(back.n_head_kv, c.n_head_kv) << f.name;
    EXPECT_EQ(back.intermediate_size, c.intermediate_size) << f.name;
    EXPECT_EQ(back.rotary_dims(), c.rotary_dims()) << f.name;
    EXPECT_EQ(back.tie_word_embeddings, c.tie_word_embeddings) << f.name;
    EXPECT_EQ(parameter_count(back), parameter_count(c)) << f.name;
  }
}

TEST(ModelFamilies, LoaderReadsExactlyTheRandomCheckpointsTensors) {
  for (const ModelFamily& f : model_families()) {
    TempDir d;
    const NamedTensors stored = write_random_model(d.path(), family_preset("tiny", f.name), 3, 2);
    const ModelConfig c = load_model_config(d.path());
    Checkpoint ckpt = Checkpoint::open(d.path());
    std::unique_ptr<CausalLM> m = load_model(ckpt, c, LoadOptions{});
    std::map<std::string, at::Tensor> params;
    for (auto& [name, t] : m->named_parameters()) EXPECT_TRUE(params.emplace(name, t).second) << name;
    int64_t numel = 0;
    for (const auto& [name, t] : stored) {
      numel += t.numel();
      auto it = params.find(name);
      ASSERT_NE(it, params.end()) << f.name << ": " << name << " is stored but not loaded";
      EXPECT_TRUE(at::equal(it->second, t)) << f.name << ": " << name;
    }
    EXPECT_EQ(params.size(), stored.size()) << f.name;
    EXPECT_EQ(parameter_count(c), numel) << f.name;
    EXPECT_EQ(m->weight_bytes(), numel * 4) << f.name;
  }
}

// A weight holding NaN or infinity is refused at load, naming the checkpoint and the tensor (such a
// model would compute NaN for every token without a word).
TEST(ModelFamilies, NonFiniteWeightsRefusedAtLoad) {
  for (const ModelFamily& f : model_families()) {
    TempDir d;
    NamedTensors stored = write_random_model(d.path(), family_preset("tiny", f.name), 3);
    auto& [name, t] = stored[stored.size() / 2];
    t.view({-1})[t.numel() / 2] = std::numeric_limits<float>::quiet_NaN();
    write_checkpoint(d.path(), stored);
    const ModelConfig c = load_model_config(d.path());
    Checkpoint ckpt = Checkpoint::open(d.path());
    const std::string e = lminf::testing::error_of([&] { load_model(ckpt, c, LoadOptions{}); });
    EXPECT_NE(e.find(d.path().string() + ": tensor '" + name + "' holds NaN or infinite values (1 among"),
              std::string::npos) << f.name << ": " << e;
  }
}

}  // namespace
}  // namespace lminf
