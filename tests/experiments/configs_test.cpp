// Every shipped config (configs/**/*.yaml) passes the same validation `lminf run` does before any
// weight is read: keys, types, task section, attention variant against the model, data, parallel
// sizes -- for each sweep point. Configs written for checkpoints and data that are not here (the
// paper's Llama-2-7B runs) are validated against a stand-in: a Llama-2-7B config.json (no weights
// are read by validation) with the embedded model's tokenizer, and empty files of the data's format.
#include <gtest/gtest.h>

#include <fstream>

#include <yaml-cpp/yaml.h>

#include "experiments/run/run_experiment.h"
#include "experiments/run/sweep.h"
#include "framework/config/spec.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::TempDir;
using lminf::testing::write_text;

// Llama-2-7B's config.json, as Hugging Face ships it (the values validation looks at).
const char* kLlama2Config = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
  "intermediate_size": 11008, "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 32, "max_position_embeddings": 4096, "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0, "vocab_size": 32000, "bos_token_id": 1, "eos_token_id": 2,
  "tie_word_embeddings": false, "torch_dtype": "float16"
})";

std::vector<fs::path> shipped_configs() {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(lminf::testing::source_dir() / "configs"))
    if (e.is_regular_file() && e.path().extension() == ".yaml") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ShippedConfigs, EveryConfigAndSweepPointValidates) {
  const auto configs = shipped_configs();
  ASSERT_GE(configs.size(), 5u) << "configs/ not found under " << lminf::testing::source_dir();
  TempDir tmp;
  const fs::path stand_in = tmp / "llama-2-7b";
  fs::create_directories(stand_in);
  write_text(stand_in / "config.json", kLlama2Config);
  fs::copy_file(lminf::testing::source_dir() / "embedded" / "lminf-info-1m" / "tokenizer.model",
                stand_in / "tokenizer.model");

  // Paths are relative to the repository root, as in the README's commands.
  const fs::path cwd = fs::current_path();
  fs::current_path(lminf::testing::source_dir());
  int validated = 0;
  for (const auto& file : configs) {
    SCOPED_TRACE(file.string());
    YAML::Node root = load_yaml_file(file.string());
    ASSERT_TRUE(root.IsMap());
    std::vector<std::string> base;
    const std::string model_path = root["model"] && root["model"]["path"] ? root["model"]["path"].as<std::string>() : "";
    if (!model_path.empty() && !fs::exists(model_path)) base.push_back("model.path=" + stand_in.string());
    if (root["data"] && root["data"]["path"]) {
      const fs::path data = root["data"]["path"].as<std::string>();
      if (!fs::exists(data)) {
        // An empty stand-in of the same kind: a folder for text corpora without an extension.
        const fs::path fake = tmp / ("data-" + std::to_string(validated)) / data.filename();
        if (data.has_extension()) {
          fs::create_directories(fake.parent_path());
          std::ofstream(fake).put('\n');
        } else {
          fs::create_directories(fake);
          write_text(fake / "doc.txt", "text\n");
        }
        base.push_back("data.path=" + fake.string());
      }
    }
    if (root["task"] && root["task"]["haystack"] && !fs::exists(root["task"]["haystack"].as<std::string>())) {
      const fs::path fake = tmp / ("haystack-" + std::to_string(validated) + ".txt");  // task ruler's text
      write_text(fake, "A text haystack of a few words.\n");
      base.push_back("task.haystack=" + fake.string());
    }
    if (root["task"] && root["task"]["eval_path"] && !fs::exists(root["task"]["eval_path"].as<std::string>())) {
      const fs::path fake = tmp / ("eval-" + std::to_string(validated) + ".ids");
      write_text(fake, "1 2 3\n");
      base.push_back("task.eval_path=" + fake.string());
    }
    base.push_back("output.dir=" + (tmp / "out").string());
    int world = 1;
    if (root["parallel"]) {
      if (root["parallel"]["tensor_parallel"]) world *= root["parallel"]["tensor_parallel"].as<int>();
      if (root["parallel"]["data_parallel"]) world *= root["parallel"]["data_parallel"].as<int>();
    }
    std::vector<std::vector<std::string>> points;
    if (root["sweep"] && !root["sweep"].IsNull()) {
      for (const auto& p : expand_sweep(root["sweep"], file.string())) {
        auto o = base;
        for (const auto& [k, v] : p.overrides) o.push_back(k + "=" + v);
        o.push_back("sweep=null");
        points.push_back(o);
      }
    } else {
      points.push_back(base);
    }
    for (const auto& o : points) {
      try {
        LoadedExperiment exp = load_experiment(file.string(), o, world);
        EXPECT_FALSE(exp.spec.name.empty());
        ++validated;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
  }
  fs::current_path(cwd);
  EXPECT_GE(validated, static_cast<int>(configs.size()));
}

}  // namespace
}  // namespace lminf
