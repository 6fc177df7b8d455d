// The staging of final outputs (experiments/outputs/output_stage.h): a folder always holds one
// run's outputs. Publishing replaces files and folders, removes the earlier run's outputs that the
// new run does not write, records the names; a run killed before publishing leaves the earlier
// outputs as they were; one killed while publishing is completed by the next run.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "experiments/outputs/output_stage.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::dir_entries;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;

std::vector<std::string> recorded(const fs::path& dir) {
  return nlohmann::json::parse(read_text(dir / ".lminf-outputs.json"))["outputs"].get<std::vector<std::string>>();
}

TEST(OutputStage, PublishReplacesAndRemovesStaleOutputs) {
  TempDir d;
  const fs::path dir = d / "out";
  // Run 1: results, a dump and a model folder.
  fs::path st = begin_staging(dir);
  EXPECT_TRUE(has_unfinished_run(dir));
  write_text(st / "results.json", "one");
  write_text(st / "factors.h5", "dump one");
  fs::create_directories(st / "model");
  write_text(st / "model" / "config.json", "m1");
  write_text(st / "model" / "old_only.txt", "x");
  write_text(dir / "samples.partial.jsonl", "journal");  // resume state lives beside the outputs
  EXPECT_EQ(publish_staging(dir, {}), (std::vector<std::string>{"factors.h5", "model", "results.json"}));
  EXPECT_FALSE(has_unfinished_run(dir));
  EXPECT_EQ(read_text(dir / "results.json"), "one");
  EXPECT_EQ(recorded(dir), (std::vector<std::string>{"factors.h5", "model", "results.json"}));

  // Run 2 writes no dump: factors.h5 goes; the model folder is replaced whole, not merged.
  st = begin_staging(dir);
  write_text(st / "results.json", "two");
  fs::create_directories(st / "model");
  write_text(st / "model" / "config.json", "m2");
  EXPECT_EQ(read_text(dir / "results.json"), "one");  // untouched until the run completes
  publish_staging(dir, {});
  EXPECT_EQ(read_text(dir / "results.json"), "two");
  EXPECT_FALSE(fs::exists(dir / "factors.h5"));
  EXPECT_EQ(read_text(dir / "model" / "config.json"), "m2");
  EXPECT_FALSE(fs::exists(dir / "model" / "old_only.txt"));
  EXPECT_EQ(recorded(dir), (std::vector<std::string>{"model", "results.json"}));
  EXPECT_EQ(read_text(dir / "samples.partial.jsonl"), "journal");  // never an output
  EXPECT_EQ(dir_entries(dir), (std::vector<std::string>{".lminf-outputs.json", "model", "results.json",
                                                        "samples.partial.jsonl"}));

  // Run 3 writes `model` as a file and `results.json` as a folder: each replaces the other kind.
  st = begin_staging(dir);
  write_text(st / "model", "a file now");
  fs::create_directories(st / "results.json");
  publish_staging(dir, {});
  EXPECT_EQ(read_text(dir / "model"), "a file now");
  EXPECT_TRUE(fs::is_directory(dir / "results.json"));
}

TEST(OutputStage, AKilledRunLeavesTheEarlierOutputsAndIsCleanedUp) {
  TempDir d;
  const fs::path dir = d / "out";
  write_text(begin_staging(dir) / "results.json", "one");
  publish_staging(dir, {});
  // A run killed after writing part of its outputs (and a temporary of a writer).
  fs::path st = begin_staging(dir);
  write_text(st / "config.yaml", "new");
  write_text(st / ".token_nll.h5.tmp-123", "partial");
  EXPECT_TRUE(has_unfinished_run(dir));
  EXPECT_EQ(read_text(dir / "results.json"), "one");
  EXPECT_FALSE(fs::exists(dir / "config.yaml"));
  // The next run starts from an empty stage; what the killed one wrote is gone.
  st = begin_staging(dir);
  EXPECT_TRUE(dir_entries(st).empty());
  write_text(st / "results.json", "three");
  publish_staging(dir, {});
  EXPECT_EQ(read_text(dir / "results.json"), "three");
  EXPECT_FALSE(fs::exists(dir / "config.yaml"));
  EXPECT_FALSE(fs::exists(dir / ".token_nll.h5.tmp-123"));
}

TEST(OutputStage, AKillWhilePublishingIsCompletedByTheNextRun) {
  TempDir d;
  const fs::path dir = d / "out";
  fs::path st = begin_staging(dir);
  write_text(st / "results.json", "one");
  write_text(st / "factors.h5", "dump one");
  publish_staging(dir, {});
  // Run 2 completed (its marker written), results.json moved in, then killed before the rest.
  st = begin_staging(dir);
  write_text(st / "token_nll.h5", "nll two");
  write_text(st / ".publish",
             R"({"outputs": ["results.json", "token_nll.h5"], "previous": ["factors.h5", "results.json"]})");
  write_text(dir / "results.json", "two");
  // The next run publishes it first, so the folder holds run 2 alone before run 3 starts.
  st = begin_staging(dir);
  EXPECT_TRUE(dir_entries(st).empty());
  EXPECT_EQ(read_text(dir / "results.json"), "two");
  EXPECT_EQ(read_text(dir / "token_nll.h5"), "nll two");
  EXPECT_FALSE(fs::exists(dir / "factors.h5"));
  EXPECT_EQ(recorded(dir), (std::vector<std::string>{"results.json", "token_nll.h5"}));
}

TEST(OutputStage, AFolderWithoutARecordTakesTheFallbackAsTheEarlierOutputs) {
  TempDir d;
  const fs::path dir = d / "out";
  fs::create_directories(dir);
  write_text(dir / "results.json", "old");
  write_text(dir / "factors.h5", "old dump");
  write_text(dir / "notes.txt", "the user's");
  write_text(begin_staging(dir) / "results.json", "new");
  publish_staging(dir, {"results.json", "factors.h5", "config.yaml", "../escape"});
  EXPECT_EQ(read_text(dir / "results.json"), "new");
  EXPECT_FALSE(fs::exists(dir / "factors.h5"));
  EXPECT_EQ(read_text(dir / "notes.txt"), "the user's");  // not an output of lminf: kept
  EXPECT_EQ(published_outputs(dir, {"x"}), std::vector<std::string>{"results.json"});
  EXPECT_EQ(published_outputs(d / "none", {"x"}), std::vector<std::string>{"x"});
}

}  // namespace
}  // namespace lminf
