// Factor dumps under tensor parallelism: every rank observes only its own heads, the records are
// combined over the tensor-parallel group (sums, maxima; key/value heads replicated when TP exceeds
// their count) and rank 0 writes one file that equals the one-rank dump, every head included.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "framework/io/h5_file.h"
#include "models/random_checkpoint.h"
#include "parallel/shard.h"
#include "support/test_support.h"
#include "tests/parallel/mpi/mpi_experiment.h"
#include "tests/parallel/mpi/mpi_world.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using lminf::testing::mpi_world;
using lminf::testing::TempDir;
using lminf::testing::write_text;

// Every dataset of `want` (a group walk) has an equal-shaped counterpart in `got`, equal within tol
// (NaN and infinities in the same places).
void expect_same_datasets(const H5Reader& want, const H5Reader& got, const std::string& group, double tol) {
  for (const auto& name : want.list(group)) {
    const std::string p = group == "/" ? name : group + "/" + name;
    if (!want.exists(p)) continue;
    bool is_group = true;
    try {
      want.list(p);
    } catch (const Error&) {
      is_group = false;
    }
    if (is_group) {
      expect_same_datasets(want, got, p, tol);
      continue;
    }
    ASSERT_TRUE(got.exists(p)) << p;
    at::Tensor a = want.read(p), b = got.read(p);
    ASSERT_EQ(a.sizes(), b.sizes()) << p;
    if (!a.is_floating_point()) {
      EXPECT_TRUE(at::equal(a, b)) << p;
      continue;
    }
    at::Tensor fa = at::isfinite(a), fb = at::isfinite(b);
    EXPECT_TRUE(at::equal(fa, fb)) << p;
    EXPECT_TRUE(at::equal(at::isnan(a), at::isnan(b))) << p;
    if (fa.any().item<bool>())
      EXPECT_LT((a.masked_select(fa).to(at::kDouble) - b.masked_select(fa).to(at::kDouble)).abs().max().item<double>(), tol)
          << p;
  }
}

TEST(FactorDumpTp, EveryHeadInTheFileEqualsOneRank) {
  Communicator& w = mpi_world();
  const int tp = w.size();
  ModelConfig c = llama_preset("tiny");  // 4 heads, 2 kv heads: tp 4 replicates each kv head twice
  if (!tp_incompatibility(c.n_head, c.n_head_kv, c.intermediate_size, c.vocab_size, tp).empty())
    GTEST_SKIP() << "tiny model cannot be split over " << tp << " ranks";
  TempDir dir;  // per rank
  write_random_llama(dir / "model", c, 13);
  std::string data;
  for (int n : {37, 20, 50}) {
    for (int i = 0; i < n; ++i) data += (i ? " " : "") + std::to_string(3 + (i * 29 + n) % 250);
    data += "\n";
  }
  write_text(dir / "data.ids", data);
  write_text(dir / "exp.yaml",
             "name: dump-tp\nthreads: 1\n"
             "model: {path: " + (dir / "model").string() + "}\n"
             "attention: {variant: vanilla, block_size: 8, key_block_size: 8}\n"
             "data: {format: ids, path: " + (dir / "data.ids").string() + "}\n"
             "task: {type: attention_dump, max_length: 40, batch_size: 2}\n"
             "dump: {factors: [logits, entropy, features], query_stride: 16, distance_bucket: 8,\n"
             "       feature_first: 3, feature_stride: 9, heads: [3, 0, 1]}\n"
             "output: {dir: " + (dir / "one").string() + "}\n");
  lminf::testing::run_on_rank0_alone(dir / "exp.yaml");
  lminf::testing::run_on_world(dir / "exp.yaml",
               {"parallel.tensor_parallel=" + std::to_string(tp), "output.dir=" + (dir / "tp").string()});
  if (w.rank() == 0) {
    H5Reader want(dir / "one" / "factors.h5"), got(dir / "tp" / "factors.h5");
    EXPECT_EQ(got.attr_int("/", "tensor_parallel"), tp);
    EXPECT_EQ(got.attr_int("/", "complete"), 1);
    for (const char* g : {"sequences", "factor1", "factor2", "factor3"}) expect_same_datasets(want, got, g, 2e-4);
  } else {
    EXPECT_FALSE(fs::exists(dir / "tp" / "factors.h5"));  // only rank 0 writes
  }
  w.barrier();
}

}  // namespace
}  // namespace lminf
