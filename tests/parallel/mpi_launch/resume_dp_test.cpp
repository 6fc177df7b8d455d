// `mpirun -np 2 lminf run` of task passkey with parallel.data_parallel: 2, killed (a real SIGKILL
// each replica raises once 2 of its samples are journalled) and run again: each replica resumes from
// its own journal and rank 0 writes the same samples.jsonl as one uninterrupted rank; a rerun with
// another data_parallel is refused before any weight is read.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::source_dir;
using lminf::testing::TempDir;
using lminf::testing::write_text;

TEST(MpirunResume, DataParallelPasskeyResumesPerReplica) {
  TempDir d;
  write_text(d / "p.yaml", "name: pk\nthreads: 1\nmodel: {path: " + (source_dir() / "embedded" / "lminf-info-1m").string() +
                               "}\ntask: {type: passkey, lengths: [128, 160, 224], depths: [0.5], samples: 3, grid: false}\n"
                               "output: {dir: " + (d / "one").string() + "}\n");
  const std::string lminf = lminf::testing::lminf_binary().string() + " run " + (d / "p.yaml").string();
  const std::string mpirun = "timeout 120 " LMINF_MPIEXEC " --allow-run-as-root --oversubscribe -np 2 ";
  const std::string dp2 = " --set parallel.data_parallel=2 --set output.dir=" + (d / "dp2").string();
  std::string out;
  ASSERT_EQ(run_command("timeout 120 " + lminf, &out), 0) << out;
  EXPECT_NE(run_command("LMINF_TEST_KILL_AFTER_RECORDS=2 " + mpirun + "-x LMINF_TEST_KILL_AFTER_RECORDS " + lminf + dp2,
                        &out), 0) << out;
  ASSERT_TRUE(fs::exists(d / "dp2" / "samples.partial.dp0.jsonl")) << out;
  EXPECT_FALSE(fs::exists(d / "dp2" / "results.json"));
  // Another data_parallel: refused, naming the journal's.
  EXPECT_NE(run_command("timeout 120 " + lminf + " --set output.dir=" + (d / "dp2").string(), &out), 0);
  EXPECT_NE(out.find("data_parallel 2"), std::string::npos) << out;
  ASSERT_EQ(run_command(mpirun + lminf + dp2, &out), 0) << out;
  EXPECT_NE(out.find("resuming"), std::string::npos) << out;
  EXPECT_EQ(read_text(d / "one" / "samples.jsonl"), read_text(d / "dp2" / "samples.jsonl"));
  const auto b = nlohmann::json::parse(read_text(d / "dp2" / "results.json"));
  EXPECT_GE(b["resumed_samples"].get<int64_t>(), 2);
  EXPECT_EQ(b["samples"], 9);
  for (const char* f : {"samples.partial.dp0.jsonl", "samples.partial.dp1.jsonl"}) EXPECT_FALSE(fs::exists(d / "dp2" / f)) << f;
}

}  // namespace
}  // namespace lminf
