// Task streaming_perplexity under tensor parallelism (tp = world size, data_parallel 1): the NLLs
// equal a one-rank run within float32 rounding, rank 0 alone writes, and a run resumed from the
// state (every rank's cache shard gathered to rank 0, read back and scattered) equals an
// uninterrupted tensor-parallel run bit for bit.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "experiments/run/run_experiment.h"
#include "framework/io/h5_file.h"
#include "models/random_checkpoint.h"
#include "parallel/shard.h"
#include "support/test_support.h"
#include "tests/parallel/mpi/mpi_world.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::mpi_world;
using lminf::testing::read_text;
using lminf::testing::TempDir;
using lminf::testing::write_text;

TEST(StreamingPerplexityTp, EqualsOneRankAndResumesExactly) {
  Communicator& w = mpi_world();
  ModelConfig c = llama_preset("tiny");  // 4 heads, 2 kv heads: tp 4 replicates kv heads
  if (!tp_incompatibility(c.n_head, c.n_head_kv, c.intermediate_size, c.vocab_size, w.size()).empty())
    GTEST_SKIP() << "the tiny model does not split over " << w.size() << " ranks";
  TempDir dir;  // per rank; only rank 0's outputs are written
  write_random_llama(dir / "model", c, 4);
  std::string data;
  for (int d = 0; d < 9; ++d) {
    for (int i = 0; i < 5 + (d * 17) % 40; ++i) data += (i ? " " : "") + std::to_string(3 + (d * 31 + i * 7) % 250);
    data += "\n";
  }
  write_text(dir / "data.ids", data);
  auto yaml = [&](const std::string& out, int64_t max_tokens) {
    return "name: stp\nseed: 2\nthreads: 1\n"
           "model: {path: " + (dir / "model").string() + ", dtype: float32}\n"
           "attention: {variant: lambda, local_branch: 20, global_branch: 2, block_size: 16}\n"
           "data: {format: ids, path: " + (dir / "data.ids").string() + "}\n"
           "task: {type: streaming_perplexity, chunk_size: 8, repeat: true, flush_every: 16, progress_interval: 100, "
           "max_tokens: " + std::to_string(max_tokens) + "}\n"
           "output: {dir: " + (dir / out).string() + "}\n";
  };
  const std::string tp = "parallel.tensor_parallel=" + std::to_string(w.size());
  auto run = [&](const std::string& out, int64_t max_tokens, Communicator& comm, int world) {
    write_text(dir / "s.yaml", yaml(out, max_tokens));
    auto exp = load_experiment((dir / "s.yaml").string(), world > 1 ? std::vector<std::string>{tp}
                                                                       : std::vector<std::string>{}, world);
    run_experiment(exp, comm);
  };
  if (w.rank() == 0) {
    LocalCommunicator one;
    run("one", 240, one, 1);
  }
  w.barrier();
  run("whole", 240, w, w.size());
  run("parts", 96, w, w.size());
  run("parts", 240, w, w.size());
  if (w.rank() != 0) {
    EXPECT_FALSE(fs::exists(dir / "whole"));  // rank 0 alone writes
    EXPECT_FALSE(fs::exists(dir / "parts"));
  } else {
    at::Tensor one = H5Reader(dir / "one" / "token_nll.h5").read("token_nll");
    at::Tensor whole = H5Reader(dir / "whole" / "token_nll.h5").read("token_nll");
    at::Tensor parts = H5Reader(dir / "parts" / "token_nll.h5").read("token_nll");
    ASSERT_EQ(whole.size(0), 240);
    ASSERT_EQ(parts.size(0), 240);
    EXPECT_TRUE(at::allclose(whole, one, 5e-5, 5e-5)) << (whole - one).abs().max().item<float>();
    EXPECT_TRUE(at::equal(whole, parts)) << (whole - parts).abs().max().item<float>();
    H5Reader st(dir / "parts" / "stream_state.h5");
    EXPECT_EQ(st.attr_int("/", "tensor_parallel"), w.size());
    EXPECT_EQ(st.shape("cache/layer_000/k")[0], w.size());
    auto rp = nlohmann::json::parse(read_text(dir / "parts" / "results.json"));
    EXPECT_EQ(rp["resumed_from"], 96);
    EXPECT_TRUE(rp["complete"].get<bool>());
  }
  w.barrier();
}

}  // namespace
}  // namespace lminf
