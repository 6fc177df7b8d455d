#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "experiments/run/sweep.h"
#include "framework/core/error.h"
#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::TempDir;
using lminf::testing::write_text;

TEST(Sweep, GridIsAProductThenPointsAppended) {
  YAML::Node s = YAML::Load("grid: {attention.variant: [vanilla, lambda], attention.local_branch: [64, 128]}\n"
                            "points: [{attention.variant: streaming, attention.recent_size: 32}]");
  auto pts = expand_sweep(s, "x.yaml");
  ASSERT_EQ(pts.size(), 5u);
  EXPECT_EQ(pts[0].name, "attention.variant=vanilla,attention.local_branch=64");
  EXPECT_EQ(pts[3].name, "attention.variant=lambda,attention.local_branch=128");
  EXPECT_EQ(pts[4].overrides.size(), 2u);
  EXPECT_EQ(sweep_folder_name(pts[3]), "variant-lambda_local_branch-128");
}

TEST(Sweep, ErrorsNameTheFileAndKey) {
  EXPECT_THROW(expand_sweep(YAML::Load("grdi: {a: [1]}"), "x.yaml"), Error);
  try {
    expand_sweep(YAML::Load("grid: {a: []}"), "x.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.yaml:1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(expand_sweep(YAML::Load("points: [{a: 1}, {a: 1}]"), "x.yaml"), Error);
}

TEST(Sweep, TableHasOneRowPerPointAndMarksMissing) {
  TempDir d;
  auto pts = expand_sweep(YAML::Load("grid: {attention.variant: [vanilla, lambda]}"), "x");
  std::filesystem::create_directories(d / sweep_folder_name(pts[0]));
  write_text(d / sweep_folder_name(pts[0]) / "results.json",
             R"({"mean_nll": 2.5, "ppl": 12.18, "buckets": [{"start": 0, "end": 64, "mean_nll": 2.0}]})");
  const std::string md = write_sweep_table(d.path(), pts);
  EXPECT_NE(md.find("| variant-vanilla | vanilla | 2.5 | 12.18 | 2 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| variant-lambda | lambda | not run | not run |"), std::string::npos) << md;
  const std::string csv = lminf::testing::read_text(d / "sweep.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "point,attention.variant,mean_nll,ppl,nll@0-63");
}

}  // namespace
}  // namespace lminf

#include "experiments/run/run_experiment.h"
#include "models/random_checkpoint.h"
#include "parallel/communicator.h"

namespace lminf {
namespace {

TEST(SweepRun, RunsEveryPointThenSkipsCompletedOnes) {
  TempDir d;
  write_random_llama(d / "model", llama_preset("tiny"), 2);
  write_text(d / "data.ids", "5 6 7 8 9 10 11 12 13 14 15 16\n20 21 22 23 24 25 26 27\n");
  write_text(d / "sweep.yaml", "name: s\nmodel: {path: " + (d / "model").string() + "}\ndata: {path: " +
                                   (d / "data.ids").string() + "}\ntask: {type: perplexity, bucket: 4}\noutput: {dir: " +
                                   (d / "out").string() + "}\nsweep: {points: [{attention.variant: vanilla}, "
                                   "{attention.variant: streaming, attention.start_size: 1}, {attention.variant: streaming, "
                                   "attention.start_size: 1, attention.recent_size: 3}]}\n");
  LocalCommunicator world;
  run_file((d / "sweep.yaml").string(), {}, world, false);
  for (const char* f : {"variant-vanilla", "variant-streaming_start_size-1", "variant-streaming_start_size-1_recent_size-3"})
    EXPECT_TRUE(std::filesystem::exists(d / "out" / f / "results.json")) << f;
  const std::string md = lminf::testing::read_text(d / "out" / "sweep.md");
  EXPECT_EQ(std::count(md.begin(), md.end(), '\n'), 5) << md;
  // The window of 3 changes the NLL; the default window (longer than the data) does not.
  auto nll = [&](const char* f) {
    return nlohmann::json::parse(lminf::testing::read_text(d / "out" / f / "results.json"))["mean_nll"].get<double>();
  };
  EXPECT_NEAR(nll("variant-vanilla"), nll("variant-streaming_start_size-1"), 1e-5);
  EXPECT_GT(std::abs(nll("variant-vanilla") - nll("variant-streaming_start_size-1_recent_size-3")), 1e-4);
  // The overlay: one analysis of the three points' per-token NLL, labelled by their values.
  const auto summary = nlohmann::json::parse(lminf::testing::read_text(d / "out" / "analysis" / "summary.json"));
  const std::string text = summary.dump();
  EXPECT_NE(text.find("streaming 1 3"), std::string::npos) << text;
  EXPECT_NE(text.find("vanilla"), std::string::npos) << text;
  // Re-run: completed points are skipped (their files untouched).
  const auto before = std::filesystem::last_write_time(d / "out" / "variant-vanilla" / "results.json");
  run_file((d / "sweep.yaml").string(), {}, world, false);
  EXPECT_EQ(std::filesystem::last_write_time(d / "out" / "variant-vanilla" / "results.json"), before);
}

TEST(SweepRun, ResumesAPointWhoseResultsSayIncomplete) {
  TempDir d;
  write_random_llama(d / "model", llama_preset("tiny"), 2);
  write_text(d / "data.ids", "5 6 7 8 9 10 11 12 13 14 15 16\n20 21 22 23 24 25 26 27\n");
  write_text(d / "sweep.yaml", "name: s\nmodel: {path: " + (d / "model").string() + "}\ndata: {path: " +
                                   (d / "data.ids").string() + "}\ntask: {type: streaming_perplexity, chunk_size: 4, "
                                   "max_tokens: 16}\noutput: {dir: " + (d / "out").string() +
                                   "}\nsweep: {points: [{attention.variant: streaming, attention.start_size: 1, "
                                   "attention.recent_size: 4}]}\n");
  LocalCommunicator world;
  run_file((d / "sweep.yaml").string(), {}, world, false);
  const auto results = d / "out" / "variant-streaming_start_size-1_recent_size-4" / "results.json";
  auto j = nlohmann::json::parse(lminf::testing::read_text(results));
  ASSERT_TRUE(j["complete"].get<bool>());
  const double mean = j["mean_nll"].get<double>();
  // As a killed run leaves it: the sweep must run the point again (resuming), not skip it.
  j["complete"] = false;
  write_text(results, j.dump());
  run_file((d / "sweep.yaml").string(), {}, world, false);
  j = nlohmann::json::parse(lminf::testing::read_text(results));
  EXPECT_TRUE(j["complete"].get<bool>());
  EXPECT_EQ(j["mean_nll"].get<double>(), mean);
  // A point killed before its outputs were published leaves no results.json but its staging folder
  // and its resume state: the sweep resumes it (overwrite would start it over).
  std::filesystem::remove(results);
  std::filesystem::create_directories(results.parent_path() / ".lminf-staging");
  write_text(results.parent_path() / ".lminf-staging" / "config.yaml", "partial");
  run_file((d / "sweep.yaml").string(), {}, world, false);
  j = nlohmann::json::parse(lminf::testing::read_text(results));
  EXPECT_EQ(j["resumed_from"], 16);  // resumed from its stream state, at its end
  EXPECT_EQ(j["mean_nll"].get<double>(), mean);
  EXPECT_FALSE(std::filesystem::exists(results.parent_path() / ".lminf-staging"));
}

// A grid of a few long lists multiplies out of reach: refused before a point is built.
TEST(Sweep, PointCountBoundedBeforeExpanding) {
  std::string grid = "grid: {";
  for (int k = 0; k < 20; ++k) grid += std::string(k ? ", " : "") + "k" + std::to_string(k) + ": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]";
  grid += "}";
  const std::string e = lminf::testing::error_of([&] { expand_sweep(YAML::Load(grid), "x.yaml"); });
  EXPECT_NE(e.find("x.yaml:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("sweep.grid: 1e+20 points"), std::string::npos) << e;
  EXPECT_NE(e.find("at most " + std::to_string(kMaxSweepPoints)), std::string::npos) << e;
}

}  // namespace
}  // namespace lminf
