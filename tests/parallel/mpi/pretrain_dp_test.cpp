// Task pretrain, data-parallel: every rank takes its slice of the same global batch and gradients are
// all-reduced, so N ranks end with the weights of one rank (float32 sums in another order: 1e-5).
#include <gtest/gtest.h>

#include "framework/io/checkpoint.h"
#include "support/test_support.h"
#include "tests/parallel/mpi/mpi_experiment.h"
#include "tests/parallel/mpi/mpi_world.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::mpi_world;
using lminf::testing::TempDir;
using lminf::testing::write_text;

TEST(PretrainDp, RanksEndWithTheWeightsOfOneRank) {
  Communicator& w = mpi_world();
  if (8 % w.size() != 0) GTEST_SKIP() << "global batch 8 does not split over " << w.size() << " ranks";
  TempDir dir;  // per rank
  std::string docs;
  for (int d = 0; d < 12; ++d) {
    for (int i = 0; i < 40; ++i) docs += (i ? " " : "") + std::to_string(3 + (d * 5 + i * (1 + d % 3)) % 40);
    docs += "\n";
  }
  write_text(dir / "train.ids", docs);
  write_text(dir / "pt.yaml", "name: dp\nseed: 5\nthreads: 1\ndata: {path: " + (dir / "train.ids").string() +
                                  "}\ntask:\n  type: pretrain\n  model: {vocab_size: 48, hidden_size: 32, "
                                  "intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, "
                                  "num_key_value_heads: 2}\n  context: 16\n  batch_size: 8\n  steps: 6\n  lr: 0.01\n"
                                  "  warmup: 2\n  eval_every: 0\n  checkpoint_every: 0\n"
                                  "output: {dir: " + (dir / "one").string() + "}\n");
  lminf::testing::run_on_rank0_alone(dir / "pt.yaml");
  lminf::testing::run_on_world(dir / "pt.yaml",
               {"parallel.data_parallel=" + std::to_string(w.size()), "output.dir=" + (dir / "dp").string()});
  if (w.rank() != 0) return;
  Checkpoint a = Checkpoint::open(dir / "one" / "model"), b = Checkpoint::open(dir / "dp" / "model");
  ASSERT_EQ(a.names(), b.names());
  // Tolerance from the computation: the DP gradient is the same float32 sum in another order, so
  // it differs by a few ulps of its terms; Adam divides by sqrt(v), which turns that into a tiny
  // fraction of a normalized step except where a component's gradient cancels to ~0. A weight moves
  // at most ~lr per step (Adam's normalized step), so sum(lr) = steps x lr bounds the movement;
  // 2e-3 of it allows for those cancellations while a real fault (a missing all-reduce, a wrong
  // 1/dp scale) moves weights by O(lr) per step, hundreds of times more.
  const double lr = 0.01, steps = 6, tolerance = 2e-3 * lr * steps;
  for (const auto& n : a.names())
    EXPECT_LT((a.load(n, at::kFloat) - b.load(n, at::kFloat)).abs().max().item<float>(), tolerance) << n;
}

}  // namespace
}  // namespace lminf
