// The perplexity task under data and tensor parallelism, in process: every (tp, dp) grid of this
// world writes the same token_nll.h5 and results.json (within 1e-5) as a one-rank run of the same
// experiment, with sequences of mixed lengths, batches and a sequence count that does not divide dp.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "framework/io/h5_file.h"
#include "parallel/shard.h"
#include "models/model_config_json.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"
#include "tests/parallel/mpi/mpi_experiment.h"
#include "tests/parallel/mpi/mpi_world.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;

using lminf::testing::mpi_world;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;

std::string yaml(const fs::path& model, const fs::path& data, const fs::path& out, int64_t max_length) {
  return "name: dp\n"
         "threads: 1\n"
         "model: {path: " + model.string() + ", dtype: float32}\n"
         "attention: {variant: vanilla, block_size: 16, key_block_size: 16}\n"
         "data: {format: ids, path: " + data.string() + ", prepend_bos: true}\n"
         "task: {type: perplexity, max_length: " + std::to_string(max_length) + ", bucket: 16, batch_size: 2}\n"
         "output: {dir: " + out.string() + "}\n";
}

// Runs the experiment on one rank (rank 0 alone, as reference) and on every grid of the world;
// rank 0 compares the outputs.
void expect_grids_match_one_rank(const fs::path& model, const fs::path& data, int64_t max_length) {
  Communicator& w = mpi_world();
  TempDir dir;  // per rank; only rank 0's outputs are written
  write_text(dir / "exp.yaml", yaml(model, data, dir / "ref", max_length));
  lminf::testing::run_on_rank0_alone(dir / "exp.yaml");
  const ModelConfig c = load_model_config(model);
  for (int tp = 1; tp <= w.size(); ++tp) {
    if (w.size() % tp != 0) continue;
    if (!tp_incompatibility(c.n_head, c.n_head_kv, c.intermediate_size, c.vocab_size, tp).empty()) continue;
    const int dp = w.size() / tp;
    const std::string out = (dir / ("tp" + std::to_string(tp) + "_dp" + std::to_string(dp))).string();
    lminf::testing::run_on_world(dir / "exp.yaml", {"parallel.tensor_parallel=" + std::to_string(tp),
                                                    "parallel.data_parallel=" + std::to_string(dp), "output.dir=" + out});
    if (w.rank() != 0) continue;
    H5Reader ref(dir / "ref" / "token_nll.h5"), got(fs::path(out) / "token_nll.h5");
    at::Tensor a = ref.read("token_nll"), b = got.read("token_nll");
    ASSERT_EQ(a.sizes(), b.sizes()) << "tp " << tp << " dp " << dp;
    EXPECT_TRUE(at::equal(ref.read("lengths"), got.read("lengths")));
    EXPECT_TRUE(at::equal(at::isnan(a), at::isnan(b)));  // the same padding
    EXPECT_LT(lminf::testing::padded_max_rel_diff(a, b), 5e-5) << "tp " << tp << " dp " << dp;
    auto ra = nlohmann::json::parse(read_text(dir / "ref" / "results.json"));
    auto rb = nlohmann::json::parse(read_text(fs::path(out) / "results.json"));
    EXPECT_EQ(ra["tokens"], rb["tokens"]);
    EXPECT_NEAR(ra["mean_nll"].get<double>(), rb["mean_nll"].get<double>(), 1e-5 * ra["mean_nll"].get<double>());
    EXPECT_EQ(ra["buckets"].size(), rb["buckets"].size());
    EXPECT_EQ(rb["provenance"]["world_size"], w.size());
    EXPECT_EQ(rb["provenance"]["data_parallel"], dp);
    EXPECT_EQ(rb["provenance"]["weight_bytes_per_rank"].size(), static_cast<size_t>(w.size()));
  }
  w.barrier();
}

std::string ids_line(int n, int seed, int vocab) {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? " " : "") + std::to_string(3 + (i * 37 + seed * 11) % (vocab - 3));
  return s;
}

TEST(DataParallelPerplexity, RandomModelEveryGridEqualsOneRank) {
  ModelConfig c = llama_preset("tiny");  // 4 heads, 2 kv heads, vocab 256
  TempDir dir;
  write_random_llama(dir / "model", c, 9);
  // 7 sequences: one empty, one of 1 token (BOS + 1 = nothing beyond), one longer than max_length.
  std::string data;
  for (int i : {12, 0, 5, 90, 1, 33, 17}) data += ids_line(i, i, 256) + "\n";
  write_text(dir / "data.ids", data);
  expect_grids_match_one_rank(dir / "model", dir / "data.ids", 48);
}

TEST(DataParallelPerplexity, Stories260kEveryGridEqualsOneRank) {
  const fs::path model = lminf::testing::shared_fixture("stories260k");
  if (model.empty()) GTEST_SKIP() << "../shared/fixtures/stories260k absent";
  TempDir dir;
  // The first 5 stories, cut to 96 tokens: a short, real-text check of every grid.
  std::istringstream in(read_text(model / "stories.ids"));
  std::string line, data;
  for (int i = 0; i < 5 && std::getline(in, line); ++i) data += line + "\n";
  write_text(dir / "data.ids", data);
  expect_grids_match_one_rank(model, dir / "data.ids", 96);
}

}  // namespace
}  // namespace lminf
