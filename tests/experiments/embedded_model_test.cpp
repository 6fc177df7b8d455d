// The shipped model loads, and its in-length NLL on the held-out manuals equals the figure recorded
// when it was trained (training_results.json: the first 128 tokens of the first 32 held-out documents).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "experiments/run/run_experiment.h"
#include "parallel/communicator.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::source_dir;
using lminf::testing::TempDir;
using lminf::testing::write_text;

TEST(EmbeddedModel, HeldOutNllMatchesTrainingRecord) {
  const fs::path model = source_dir() / "embedded" / "lminf-info-1m";
  ASSERT_TRUE(fs::exists(model / "model.safetensors"));
  if (!fs::exists("/usr/share/info/sed.info.gz")) GTEST_SKIP() << "/usr/share/info/sed.info.gz absent (run scripts/setup.sh)";
  TempDir d;
  std::string out;
  ASSERT_EQ(run_command("bash " + (source_dir() / "scripts" / "make_corpus.sh").string() + " " + (d / "corpus").string(), &out), 0) << out;
  write_text(d / "e.yaml", "name: e\nmodel: {path: " + model.string() + "}\ndata: {format: text, path: " +
                               (d / "corpus" / "heldout").string() + ", max_sequences: 32}\n"
                               "task: {type: perplexity, max_length: 128, bucket: 128, batch_size: 8}\n"
                               "output: {dir: " + (d / "out").string() + "}\n");
  LocalCommunicator world;
  auto exp = load_experiment((d / "e.yaml").string(), {}, 1);
  run_experiment(exp, world);
  const auto got = nlohmann::json::parse(read_text(d / "out" / "results.json"));
  const auto recorded = nlohmann::json::parse(read_text(model / "training_results.json"));
  EXPECT_EQ(got["sequences"], 32);
  EXPECT_NEAR(got["mean_nll"].get<double>(), recorded["eval_nll"].get<double>(), 1e-3);
}

}  // namespace
}  // namespace lminf
