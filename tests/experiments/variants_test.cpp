// Every attention variant through the perplexity task from YAML (a random tiny Llama, and the real
// stories260k when ../shared is present); the attention problems and the RoPE-scaling overrides
// reported by the loader before any weight is read.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "attention/registry.h"
#include "experiments/run/run_experiment.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;
using lminf::testing::error_of;

// Every registered variant on each of its registry test sections (windows of about 10 tokens, which
// matter at these lengths): (name, attention section).
std::vector<std::pair<std::string, std::string>> registry_variants() {
  std::vector<std::pair<std::string, std::string>> out;
  const std::vector<std::string> sections = attention_test_sections();
  for (size_t i = 0; i < sections.size(); ++i)
    out.emplace_back(YAML::Load(sections[i])["variant"].as<std::string>() + "_" + std::to_string(i), sections[i]);
  return out;
}
const std::vector<std::pair<std::string, std::string>> kVariants = registry_variants();

class VariantsFromYaml : public ::testing::Test {
 protected:
  void SetUp() override {
    write_random_llama(dir_ / "model", llama_preset("tiny"), 5);
    std::string data;
    for (int s = 0; s < 4; ++s) {
      for (int i = 0; i < 60 + 7 * s; ++i) data += (i ? " " : "") + std::to_string(3 + (i * 31 + s * 17) % 250);
      data += "\n";
    }
    write_text(dir_ / "data.ids", data);
  }
  std::string yaml(const std::string& attention, const std::string& out, const std::string& model_extra = "",
                   const std::string& model = "model") const {
    return "name: v\nmodel: {path: " + (dir_ / model).string() + model_extra + "}\nattention: " + attention +
           "\ndata: {path: " + (dir_ / "data.ids").string() +
           "}\ntask: {type: perplexity, max_length: 64, bucket: 16, "
           "batch_size: 2}\noutput: {dir: " +
           (dir_ / out).string() + "}\n";
  }
  nlohmann::json run(const std::string& attention, const std::string& out, const std::string& model_extra = "",
                     const std::string& model = "model") {
    write_text(dir_ / (out + ".yaml"), yaml(attention, out, model_extra, model));
    LocalCommunicator world;
    auto exp = load_experiment((dir_ / (out + ".yaml")).string(), {}, 1);
    run_experiment(exp, world);
    return nlohmann::json::parse(read_text(dir_ / out / "results.json"));
  }
  std::string load_error(const std::string& attention, const std::string& model_extra = "") {
    write_text(dir_ / "bad.yaml", yaml(attention, "bad", model_extra));
    try {
      load_experiment((dir_ / "bad.yaml").string(), {}, 1);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  TempDir dir_;
};

TEST_F(VariantsFromYaml, EveryVariantRunsThePerplexityTask) {
  std::map<std::string, double> nll;
  for (const auto& [name, section] : kVariants) {
    auto res = run(section, name);
    EXPECT_EQ(res["provenance"]["variant"], YAML::Load(section)["variant"].as<std::string>());
    nll[name] = res["mean_nll"].get<double>();
    EXPECT_TRUE(std::isfinite(nll[name])) << name;
    // The resolved attention section holds the variant's own keys, defaults included.
    const YAML::Node written = YAML::LoadFile((dir_ / name / "config.yaml").string())["attention"];
    for (const auto& key : attention_variant_keys(*find_attention_variant(written["variant"].as<std::string>())))
      EXPECT_TRUE(written[key].IsDefined()) << name << ": config.yaml has no attention." << key;
  }
  // Windows of about 10 over 64 tokens change the result; each variant differs from vanilla.
  const double vanilla = nll.at("vanilla_0");
  for (const auto& [name, value] : nll)
    if (name.rfind("vanilla", 0) != 0) EXPECT_GT(std::abs(value - vanilla), 1e-6) << name;
  // A window covering the whole sequence is vanilla.
  auto wide = run("{variant: lambda, local_branch: 64}", "wide");
  EXPECT_NEAR(wide["mean_nll"].get<double>(), vanilla, 1e-6);
}

TEST_F(VariantsFromYaml, EveryVariantRunsMptAndGptj) {
  for (const std::string family : {"mpt", "gptj"}) {
    write_random_model(dir_ / family, family_preset("tiny", family), 5);
    for (const auto& [name, section] : kVariants) {
      auto res = run(section, family + "_" + name, "", family);
      EXPECT_TRUE(std::isfinite(res["mean_nll"].get<double>())) << family << " " << name;
    }
  }
  // RoPE overrides make no sense for ALiBi: refused before any weight is read.
  write_text(dir_ / "alibi.yaml", yaml("{variant: vanilla}", "alibi", ", rope_theta: 50000", "mpt"));
  const std::string e = error_of([&] { load_experiment((dir_ / "alibi.yaml").string(), {}, 1); });
  EXPECT_NE(e.find("uses ALiBi, not rotary embeddings"), std::string::npos) << e;
}

TEST_F(VariantsFromYaml, PrependBosFollowsAddBosTokenUnlessSet) {
  write_text(dir_ / "exp.yaml", yaml("{variant: vanilla}", "o"));
  EXPECT_TRUE(load_experiment((dir_ / "exp.yaml").string(), {}, 1).spec.data.prepend_bos);  // no tokenizer_config.json
  write_text(dir_ / "model" / "tokenizer_config.json", "{\"add_bos_token\": false}");
  auto exp = load_experiment((dir_ / "exp.yaml").string(), {}, 1);
  EXPECT_FALSE(exp.spec.data.prepend_bos);
  EXPECT_NE(to_yaml_string(exp.resolved).find("prepend_bos: false"), std::string::npos);
  // Explicit wins, from the YAML or --set.
  EXPECT_TRUE(load_experiment((dir_ / "exp.yaml").string(), {"data.prepend_bos=true"}, 1).spec.data.prepend_bos);
  write_text(dir_ / "model" / "tokenizer_config.json", "{\"add_bos_token\": tru");
  const std::string e = error_of([&] { load_experiment((dir_ / "exp.yaml").string(), {}, 1); });
  EXPECT_NE(e.find("tokenizer_config.json: not valid JSON"), std::string::npos) << e;
}

TEST_F(VariantsFromYaml, WindowWithoutStartTokensIsTheModelsSlidingWindow) {
  // A model with sliding_window: 16 in config.json, run by vanilla's blockwise kernel, against the
  // variants with a 16-token window and no starting tokens.
  ModelConfig c = llama_preset("tiny");
  c.sliding_window = 16;
  write_random_llama(dir_ / "windowed", c, 5);
  const double windowed = run("{variant: vanilla}", "w", "", "windowed")["mean_nll"].get<double>();
  EXPECT_GT(std::abs(windowed - run("{variant: vanilla}", "full")["mean_nll"].get<double>()), 1e-6);
  EXPECT_NEAR(
      run("{variant: lambda, local_branch: 16, global_branch: 0}", "l0", "", "windowed")["mean_nll"].get<double>(),
      windowed, 1e-6);
  EXPECT_NEAR(
      run("{variant: streaming, start_size: 0, recent_size: 16}", "s0", "", "windowed")["mean_nll"].get<double>(),
      windowed, 1e-6);
}

TEST_F(VariantsFromYaml, AttentionProblemsBeforeWeights) {
  fs::remove(dir_ / "model" / "model.safetensors");  // nothing may read it
  std::string e = load_error("{variant: lambda, local_branch: 0}");
  EXPECT_NE(e.find("attention.local_branch=0 must be > 0 (use attention.variant: vanilla to disable the window)"),
            std::string::npos)
      << e;
  e = load_error("{variant: streaming, local_branch: 64, recent_size: 0}");
  EXPECT_NE(e.find("attention.local_branch=64 is not used by variant streaming"), std::string::npos) << e;
  EXPECT_NE(e.find("attention.recent_size=0 must be > 0"), std::string::npos) << e;
  e = load_error("{variant: topk, top_k_from_layer: 7}");  // the tiny model has 2 layers
  EXPECT_NE(e.find("no layer would retrieve"), std::string::npos) << e;
}

TEST_F(VariantsFromYaml, RopeScalingOverridesConfigJson) {
  write_text(dir_ / "exp.yaml",
             yaml("{variant: lambda, local_branch: 16}", "o",
                  ", rope_scaling: {rope_type: yarn, factor: 4.0, beta_fast: 16}, rope_theta: 50000"));
  auto exp = load_experiment((dir_ / "exp.yaml").string(), {}, 1);
  EXPECT_EQ(exp.model_config.rope_scaling.type, "yarn");
  EXPECT_EQ(exp.model_config.rope_scaling.factor, 4.0);
  EXPECT_EQ(exp.model_config.rope_scaling.beta_fast, std::optional<double>(16.0));
  EXPECT_EQ(exp.model_config.rope_theta, 50000.0);
  EXPECT_NE(to_yaml_string(exp.resolved).find("rope_type: yarn"), std::string::npos);
  // Absent or null: as config.json.
  auto plain = load_experiment((dir_ / "exp.yaml").string(), {"model.rope_scaling=null", "model.rope_theta=null"}, 1);
  EXPECT_EQ(plain.model_config.rope_scaling.type, "default");
  EXPECT_EQ(plain.model_config.rope_theta, 10000.0);
  // Each baseline changes the NLL of the same model and data, with every variant.
  const double base = run("{variant: vanilla}", "base")["mean_nll"].get<double>();
  for (const std::string rs : {"{rope_type: linear, factor: 2.0}", "{type: dynamic, factor: 2.0}",
                               "{rope_type: llama3, factor: 8.0, original_max_position_embeddings: 16}"}) {
    for (const std::string attn : {"{variant: vanilla}", "{variant: streaming, start_size: 2, recent_size: 16}"}) {
      const std::string out = "rs" + std::to_string(std::hash<std::string>()(rs + attn) % 100000);
      const double v = run(attn, out, ", rope_scaling: " + rs)["mean_nll"].get<double>();
      EXPECT_TRUE(std::isfinite(v)) << rs << " " << attn;
      if (attn == "{variant: vanilla}" && rs.find("dynamic") == std::string::npos)
        EXPECT_GT(std::abs(v - base), 1e-6) << rs;
    }
  }
  // Bad overrides are reported with the others, at their key.
  std::string e = load_error("{variant: vanilla}", ", rope_scaling: {rope_type: cubic, factor: 2}");
  EXPECT_NE(e.find("model.rope_scaling: rope_scaling type \"cubic\" is not supported"), std::string::npos) << e;
  e = load_error("{variant: vanilla}", ", rope_scaling: 2.0, rope_theta: 0.5");
  EXPECT_NE(e.find("model.rope_scaling: expected a map"), std::string::npos) << e;
  EXPECT_NE(e.find("model.rope_theta must be > 1"), std::string::npos) << e;
}

TEST(VariantsStories260k, EveryVariantOnTheRealModel) {
  auto dir = lminf::testing::shared_fixture("stories260k");
  if (dir.empty()) GTEST_SKIP() << "../shared/fixtures/stories260k absent";
  TempDir tmp;
  auto run = [&](const std::string& name, const std::string& attention) {
    write_text(tmp / (name + ".yaml"),
               "name: s\nmodel: {path: " + dir.string() + "}\nattention: " + attention +
                   "\ndata: {path: " + (dir / "stories.ids").string() +
                   ", max_sequences: 6}\ntask: {type: perplexity, max_length: 512, bucket: 128, "
                   "batch_size: 3}\noutput: {dir: " +
                   (tmp / name).string() + "}\n");
    LocalCommunicator world;
    auto exp = load_experiment((tmp / (name + ".yaml")).string(), {}, 1);
    run_experiment(exp, world);
    return nlohmann::json::parse(read_text(tmp / name / "results.json"));
  };
  const auto vanilla = run("vanilla", "{variant: vanilla}");
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"lambda", "{variant: lambda, local_branch: 128, global_branch: 4}"},
      {"topk", "{variant: topk, local_branch: 128, global_branch: 4, top_k: 4, top_k_from_layer: 2}"},
      {"streaming", "{variant: streaming, start_size: 4, recent_size: 128}"},
      {"distance_limit", "{variant: distance_limit, limit_distance: 128}"},
  };
  for (const auto& [name, section] : variants) {
    const auto res = run(name, section);
    // Positions 0-127 are inside every window: exactly vanilla. Beyond, this 512-token model
    // degrades with a 128-token window (it does with its own sliding-window path too).
    EXPECT_NEAR(res["buckets"][0]["mean_nll"].get<double>(), vanilla["buckets"][0]["mean_nll"].get<double>(), 1e-5)
        << name;
    EXPECT_TRUE(std::isfinite(res["mean_nll"].get<double>())) << name;
    EXPECT_GT(res["mean_nll"].get<double>(), vanilla["mean_nll"].get<double>()) << name;
  }
  EXPECT_NEAR(run("lambda_wide", "{variant: lambda, local_branch: 512}")["mean_nll"].get<double>(),
              vanilla["mean_nll"].get<double>(), 1e-5);
}

}  // namespace
}  // namespace lminf
