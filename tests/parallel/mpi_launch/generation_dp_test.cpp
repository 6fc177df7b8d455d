// Tasks generation and qa under `mpirun -np 2` with parallel.data_parallel = 2 (ctest label mpi): the
// replicas split the prompts, rank 0 merges once, and the files equal those of one rank.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::TempDir;
using lminf::testing::write_text;

std::string lminf() { return lminf::testing::lminf_binary().string(); }
std::string mpirun2() { return "timeout 300 " LMINF_MPIEXEC " --allow-run-as-root --oversubscribe -np 2 "; }

nlohmann::json without_provenance(const fs::path& p) {
  auto j = nlohmann::json::parse(read_text(p));
  j.erase("provenance");
  j.erase("elapsed_s");
  return j;
}

TEST(MpirunGenerationQa, DataParallelWritesTheSameFilesAsOneRank) {
  TempDir dir;
  const fs::path model = lminf::testing::source_dir() / "embedded" / "lminf-info-1m";
  fs::create_directories(dir.path() / "docs");
  const std::string text =
      "The stream editor reads its input line by line and applies each command in the script. "
      "A regular expression matches a set of strings; grep prints the lines that contain a match. ";
  std::string qa;
  for (int i = 0; i < 3; ++i) {
    std::string doc;
    for (int k = 0; k <= 4 + i; ++k) doc += text;
    write_text(dir.path() / "docs" / ("d" + std::to_string(i) + ".txt"), doc);
    qa += nlohmann::json({{"context", doc}, {"question", "What does grep print?"}, {"answers", {"lines"}}}).dump() + "\n";
  }
  write_text(dir.path() / "qa.jsonl", qa);
  const std::string common = "threads: 1\nmodel: {path: " + model.string() + "}\n"
                             "attention: {variant: lambda, local_branch: 64, global_branch: 4}\n";
  write_text(dir.path() / "gen.yaml", "name: gen\n" + common +
             "data: {format: text, path: " + (dir.path() / "docs").string() + "}\n"
             "task: {type: generation, depths: [40, 100], max_new_tokens: 8, truncation_baseline: true}\n"
             "output: {dir: " + (dir.path() / "gen1").string() + "}\n");
  write_text(dir.path() / "qa.yaml", "name: qa\n" + common +
             "data: {format: jsonl, path: " + (dir.path() / "qa.jsonl").string() + "}\n"
             "task: {type: qa, max_length: 96, max_new_tokens: 6}\n"
             "output: {dir: " + (dir.path() / "qa1").string() + "}\n");
  for (const std::string task : {"gen", "qa"}) {
    const std::string yaml = (dir.path() / (task + ".yaml")).string();
    std::string out;
    ASSERT_EQ(run_command("timeout 300 " + lminf() + " run " + yaml, &out), 0) << out;
    ASSERT_EQ(run_command(mpirun2() + lminf() + " run " + yaml + " --set parallel.data_parallel=2 --set output.dir=" +
                              (dir.path() / (task + "2")).string(),
                          &out),
              0)
        << out;
    const std::string records = task == "gen" ? "generations.jsonl" : "predictions.jsonl";
    EXPECT_EQ(read_text(dir.path() / (task + "1") / records), read_text(dir.path() / (task + "2") / records)) << task;
    EXPECT_EQ(without_provenance(dir.path() / (task + "1") / "results.json"),
              without_provenance(dir.path() / (task + "2") / "results.json"))
        << task;
    auto r2 = nlohmann::json::parse(read_text(dir.path() / (task + "2") / "results.json"));
    EXPECT_EQ(r2["provenance"]["data_parallel"].get<int>(), 2);
    // Progress and the summary come from rank 0 only.
    EXPECT_EQ(out.find("[rank 1] info"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace lminf
