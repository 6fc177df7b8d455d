// `mpirun -np 2 lminf run` of task ruler (ctest label mpi): with parallel.data_parallel: 2 the
// replicas split the samples unevenly (5 over 2) and rank 0 writes the same samples.jsonl and score
// table as one rank.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace lminf {
namespace {
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::source_dir;
using lminf::testing::TempDir;
using lminf::testing::write_text;

TEST(MpirunRuler, DataParallelWritesTheSameSamplesAsOneRank) {
  TempDir d;
  write_text(d / "r.yaml", "name: ruler\nthreads: 1\nmodel: {path: " +
                               (source_dir() / "embedded" / "lminf-info-1m").string() +
                               "}\ntask: {type: ruler, tasks: [niah_single_1, niah_multikey_3, fwe, vt, cwe], "
                               "lengths: [800], num_samples: 1, max_new_tokens: 3, vt_example_length: 0, grid: false}\n"
                               "output: {dir: " + (d / "one").string() + "}\n");
  const std::string lminf = lminf::testing::lminf_binary().string() + " run " + (d / "r.yaml").string();
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
  for (const char* k : {"samples", "scores", "averages", "effective_length"}) EXPECT_EQ(a[k], b[k]) << k;
  EXPECT_EQ(b["samples"], 5);
  EXPECT_EQ(b["provenance"]["data_parallel"], 2);
}

}  // namespace
}  // namespace lminf
