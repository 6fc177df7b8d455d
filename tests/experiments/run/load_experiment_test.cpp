// load_experiment's checks against hostile inputs (experiments/run/load_experiment.cpp): a model
// whose sizes are each in range but whose weights the machine cannot hold is refused before a weight
// is read, naming config.json; junk RoPE overrides from YAML or --set are refused naming their origin.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "experiments/run/run_experiment.h"
#include "framework/core/format.h"
#include "framework/core/process_memory.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using testing::TempDir;
using testing::error_of;
using testing::write_text;

std::string spec(const std::filesystem::path& model, const std::filesystem::path& out) {
  return "name: x\nmodel: {path: " + model.string() + "}\ndata: {format: ids, path: d.ids}\n"
         "task: {type: perplexity, max_length: 16}\noutput: {dir: " + out.string() + "}\n";
}

TEST(LoadExperiment, ModelLargerThanMemoryRefusedNamingConfig) {
  if (available_memory_bytes() <= 0) GTEST_SKIP() << "this machine does not say how much memory it has";
  TempDir d;
  std::filesystem::create_directories(d / "m");
  const nlohmann::json config = {{"model_type", "llama"},      {"hidden_size", 65536},       {"intermediate_size", 262144},
                                 {"num_hidden_layers", 1024},  {"num_attention_heads", 512}, {"vocab_size", 1000000},
                                 {"bos_token_id", 1},          {"eos_token_id", 2}};
  write_text(d / "m" / "config.json", config.dump());
  write_text(d / "x.yaml", spec(d / "m", d / "out"));
  const std::string e = error_of([&] { load_experiment((d / "x.yaml").string(), {}, 1); });
  EXPECT_NE(e.find((d / "m" / "config.json").string() + ": the model has "), std::string::npos) << e;
  EXPECT_NE(e.find("of memory this process may use"), std::string::npos) << e;
}

TEST(LoadExperiment, JunkRopeOverridesNamed) {
  TempDir d;
  const auto model = testing::source_dir() / "embedded" / "lminf-info-1m";
  write_text(d / "x.yaml", spec(model, d / "out"));
  const std::string file = (d / "x.yaml").string();
  std::string e = error_of([&] { load_experiment(file, {"model.rope_scaling={rope_type: linear, factor: .nan}"}, 1); });
  EXPECT_NE(e.find("--set model.rope_scaling="), std::string::npos) << e;
  EXPECT_NE(e.find("rope_scaling.factor must be a finite number"), std::string::npos) << e;
  e = error_of([&] { load_experiment(file, {"model.rope_scaling={rope_type: [1, 2], factor: 2}"}, 1); });
  EXPECT_NE(e.find("rope_scaling.rope_type must be a string"), std::string::npos) << e;
  e = error_of([&] { load_experiment(file, {"model.rope_theta=.inf"}, 1); });
  EXPECT_NE(e.find("model.rope_theta must be > 1 and finite"), std::string::npos) << e;
}

// Found by fuzz/experiment_spec_fuzz.cpp: a task.type that is a list, a map or null escaped as
// yaml-cpp's TypedBadConversion instead of an Error naming the file, line and key.
TEST(LoadExperiment, TaskTypeThatIsNotANameRefusedNamingTheLine) {
  TempDir d;
  for (const std::string type : {"[perplexity, qa]", "{a: 1}", "null"}) {
    write_text(d / "x.yaml", "name: x\nmodel: {path: m}\ndata: {format: ids, path: d.ids}\noutput: {dir: out}\n"
                             "task:\n  max_length: 16\n  type: " + type + "\n");
    const std::string e = error_of([&] { load_experiment((d / "x.yaml").string(), {}, 1); });
    EXPECT_NE(e.find((d / "x.yaml").string() + ":7:"), std::string::npos) << e;
    EXPECT_NE(e.find("task.type must be a task name"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace lminf
