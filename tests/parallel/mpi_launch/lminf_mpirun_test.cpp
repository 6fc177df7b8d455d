// `mpirun -np N lminf run ...` end to end (ctest label mpi): the parallel runs write the same
// token_nll.h5 and results.json as a plain `lminf run`, and every failure ends the job promptly with
// "[rank r] ..." and a non-zero status (each command runs under `timeout`, so a hang fails the test
// instead of blocking it).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "framework/io/h5_file.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;

using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::TempDir;
using lminf::testing::write_text;

constexpr int kTimeoutS = 120;
constexpr int kTimedOut = 124;  // timeout(1)'s status

std::string mpirun(int np) {
  return "timeout " + std::to_string(kTimeoutS) + " " LMINF_MPIEXEC " --allow-run-as-root --oversubscribe -np " +
         std::to_string(np) + " ";
}

std::string lminf() { return lminf::testing::lminf_binary().string(); }

class MpirunLminf : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = lminf::testing::shared_fixture("stories260k");
    if (model_.empty()) {
      // No fixture: a random GQA model with an MLP width that splits unevenly over 4 ranks.
      ASSERT_EQ(run_command(lminf() + " random-model tiny " + (dir_ / "model").string()), 0);
      model_ = dir_ / "model";
    }
    std::string data;
    if (fs::exists(model_ / "stories.ids")) {
      std::istringstream in(read_text(model_ / "stories.ids"));
      std::string line;
      for (int i = 0; i < 6 && std::getline(in, line); ++i) data += line + "\n";
    } else {
      data = "5 6 7 8 9 10 11 12 13 14 15 16\n20 21 22 23\n30 31 32 33 34 35 36 37 38 39 40 41 42 43 44\n";
    }
    write_text(dir_ / "data.ids", data);
    write_text(dir_ / "exp.yaml",
               "name: mpirun\n"
               "threads: 1\n"
               "model: {path: " + model_.string() + "}\n"
               "attention: {variant: vanilla, block_size: 32}\n"
               "data: {format: ids, path: " + (dir_ / "data.ids").string() + "}\n"
               "task: {type: perplexity, max_length: 128, bucket: 32, batch_size: 2}\n"
               "output: {dir: " + (dir_ / "one").string() + "}\n");
  }

  // lminf run with `np` ranks and the grid tp x dp into output.dir = dir_/name; returns the status.
  int run(int np, int tp, int dp, const std::string& name, std::string* out) {
    const std::string sets = " --set parallel.tensor_parallel=" + std::to_string(tp) +
                             " --set parallel.data_parallel=" + std::to_string(dp) + " --set output.dir=" +
                             (dir_ / name).string();
    const std::string cmd = (np > 0 ? mpirun(np) : std::string("timeout 120 ")) + lminf() + " run " +
                            (dir_ / "exp.yaml").string() + sets;
    return run_command(cmd, out);
  }

  void expect_same_as_one_rank(const std::string& name) {
    H5Reader ref(dir_ / "one" / "token_nll.h5"), got(dir_ / name / "token_nll.h5");
    at::Tensor a = ref.read("token_nll"), b = got.read("token_nll");
    ASSERT_EQ(a.sizes(), b.sizes());
    EXPECT_TRUE(at::equal(at::isnan(a), at::isnan(b)));
    EXPECT_LT(lminf::testing::padded_max_rel_diff(a, b), 5e-5) << name;
    auto ra = nlohmann::json::parse(read_text(dir_ / "one" / "results.json"));
    auto rb = nlohmann::json::parse(read_text(dir_ / name / "results.json"));
    EXPECT_EQ(ra["tokens"], rb["tokens"]);
    EXPECT_NEAR(ra["mean_nll"].get<double>(), rb["mean_nll"].get<double>(), 1e-5 * ra["mean_nll"].get<double>()) << name;
    // Only rank 0 wrote: one results.json, and it records the grid.
    EXPECT_EQ(rb["provenance"]["world_size"].get<int>(),
              rb["provenance"]["tensor_parallel"].get<int>() * rb["provenance"]["data_parallel"].get<int>());
  }

  TempDir dir_;
  fs::path model_;
};

TEST_F(MpirunLminf, ParallelRunsWriteTheSameResultsAsOneRank) {
  std::string out;
  ASSERT_EQ(run(0, 1, 1, "one", &out), 0) << out;
  struct Grid {
    int tp, dp;
  };
  for (Grid g : {Grid{2, 1}, Grid{1, 2}, Grid{2, 2}, Grid{4, 1}}) {
    const std::string name = "tp" + std::to_string(g.tp) + "_dp" + std::to_string(g.dp);
    ASSERT_EQ(run(g.tp * g.dp, g.tp, g.dp, name, &out), 0) << out;
    expect_same_as_one_rank(name);
    // Per-rank weights are reported; progress and the summary table come from rank 0 only.
    EXPECT_NE(out.find("MiB of weights resident"), std::string::npos) << out;
    EXPECT_EQ(out.find("[rank 1] info"), std::string::npos) << out;
  }
}

TEST_F(MpirunLminf, TensorParallel8ReplicatesKvHeads) {
  if (model_.filename() != "stories260k") GTEST_SKIP() << "../shared/fixtures/stories260k absent";
  std::string out;
  ASSERT_EQ(run(0, 1, 1, "one", &out), 0) << out;
  ASSERT_EQ(run(8, 8, 1, "tp8", &out), 0) << out;  // 4 kv heads over 8 ranks, intermediate 172 = 4x22 + 4x21
  expect_same_as_one_rank("tp8");
}

TEST_F(MpirunLminf, GridThatDoesNotMatchTheWorldFailsBeforeLoading) {
  std::string out;
  const int status = run(2, 1, 1, "bad", &out);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(status, kTimedOut) << out;
  EXPECT_NE(out.find("must equal the number of ranks (2"), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 0] error"), std::string::npos) << out;
  EXPECT_EQ(out.find("MiB of weights"), std::string::npos) << out;  // nothing was loaded
  EXPECT_FALSE(fs::exists(dir_ / "bad" / "config.yaml"));
}

TEST_F(MpirunLminf, HeadsThatDoNotSplitFailBeforeLoading) {
  std::string out;
  const int status = run(3, 3, 1, "bad", &out);  // 3 divides neither 8 (stories) nor 4 (tiny) heads
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(status, kTimedOut) << out;
  EXPECT_NE(out.find("is not divisible by tensor_parallel (3)"), std::string::npos) << out;
  EXPECT_EQ(out.find("MiB of weights"), std::string::npos) << out;
}

TEST_F(MpirunLminf, ErrorOnRankZeroWhileOthersWaitEndsTheJob) {
  // Rank 0 refuses to overwrite earlier results while rank 1 already waits in a barrier.
  std::string out;
  ASSERT_EQ(run(2, 2, 1, "again", &out), 0) << out;
  const int status = run(2, 2, 1, "again", &out);
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(status, kTimedOut) << "mpirun hung: " << out;
  EXPECT_NE(out.find("[rank 0] error"), std::string::npos) << out;
  EXPECT_NE(out.find("already exists"), std::string::npos) << out;
}

TEST(MpirunFailure, ExceptionOnOneRankInsideCollectivesEndsEveryRank) {
  for (int bad : {1, 0}) {
    std::string out;
    const int status = run_command(mpirun(2) + LMINF_MPI_TEST_BINARY " --lminf-throw-on-rank=" + std::to_string(bad), &out);
    EXPECT_NE(status, 0) << out;
    EXPECT_NE(status, kTimedOut) << "mpirun hung: " << out;
    EXPECT_NE(out.find("[rank " + std::to_string(bad) + "] error: deliberate failure"), std::string::npos) << out;
    EXPECT_EQ(out.find("no rank threw"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace lminf
