// `mpirun -np 2 lminf run` of task passkey (ctest label mpi): with parallel.data_parallel: 2 the
// replicas split the samples unevenly (9 over 2) and rank 0 writes the same samples.jsonl and
// accuracies as one rank; with tensor_parallel: 2 the same prompts.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::source_dir;
using lminf::testing::TempDir;
using lminf::testing::write_text;

TEST(MpirunPasskey, DataParallelWritesTheSameSamplesAsOneRank) {
  TempDir d;
  write_text(d / "p.yaml", "name: pk\nthreads: 1\nmodel: {path: " + (source_dir() / "embedded" / "lminf-info-1m").string() +
                               "}\ntask: {type: passkey, lengths: [128, 160, 224], depths: [0.5], samples: 3, grid: false}\n"
                               "output: {dir: " + (d / "one").string() + "}\n");
  const std::string lminf = lminf::testing::lminf_binary().string() + " run " + (d / "p.yaml").string();
  std::string out;
  ASSERT_EQ(run_command("timeout 120 " + lminf, &out), 0) << out;
  ASSERT_EQ(run_command("timeout 120 " LMINF_MPIEXEC " --allow-run-as-root --oversubscribe -np 2 " + lminf +
                            " --set parallel.data_parallel=2 --set output.dir=" + (d / "dp2").string(),
                        &out),
            0)
      << out;
  EXPECT_EQ(read_text(d / "one" / "samples.jsonl"), read_text(d / "dp2" / "samples.jsonl"));
  const auto a = nlohmann::json::parse(read_text(d / "one" / "results.json"));
  const auto b = nlohmann::json::parse(read_text(d / "dp2" / "results.json"));
  for (const char* k : {"samples", "correct", "accuracy", "by_length", "by_depth", "cells"}) EXPECT_EQ(a[k], b[k]) << k;
  EXPECT_EQ(b["samples"], 9);
  EXPECT_EQ(b["provenance"]["data_parallel"], 2);

  // tensor_parallel 2: the same prompts (keys, needle positions); the greedy text too, except where a
  // near-tie of two logits rounds differently over the split reductions, so it is not compared.
  ASSERT_EQ(run_command("timeout 120 " LMINF_MPIEXEC " --allow-run-as-root --oversubscribe -np 2 " + lminf +
                            " --set parallel.tensor_parallel=2 --set output.dir=" + (d / "tp2").string(),
                        &out),
            0)
      << out;
  std::istringstream one(read_text(d / "one" / "samples.jsonl")), tp2(read_text(d / "tp2" / "samples.jsonl"));
  std::string x, y;
  int lines = 0;
  while (std::getline(one, x) && std::getline(tp2, y)) {
    const auto jx = nlohmann::json::parse(x), jy = nlohmann::json::parse(y);
    for (const char* k : {"index", "length", "depth", "key", "needle_start", "needle_distance"}) EXPECT_EQ(jx[k], jy[k]) << k;
    ++lines;
  }
  EXPECT_EQ(lines, 9);
}

}  // namespace
}  // namespace lminf
