// Tensor-parallel slicing and layers: sharded results reassembled equal the dense computation.
#include <gtest/gtest.h>

#include "framework/core/error.h"
#include "parallel/parallel_layers.h"
#include "parallel/shard.h"

namespace lminf {
namespace {

TEST(Shard, EvenSplitAndError) {
  EXPECT_EQ(even_shard(12, 2, 4, "x").start, 6);
  EXPECT_EQ(even_shard(12, 2, 4, "x").length, 3);
  EXPECT_THROW(even_shard(10, 0, 4, "intermediate_size"), Error);
}

TEST(Shard, BalancedSplitCoversEveryRowOnce) {
  for (int64_t n : {172, 11008, 9, 8}) {
    for (int size : {1, 2, 3, 4, 8}) {
      int64_t next = 0, lo = n, hi = 0;
      for (int r = 0; r < size; ++r) {
        Shard s = balanced_shard(n, r, size, "intermediate_size");
        EXPECT_EQ(s.start, next) << n << " over " << size;
        next = s.start + s.length;
        lo = std::min(lo, s.length);
        hi = std::max(hi, s.length);
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(hi - lo, 1);
      if (n % size == 0) EXPECT_EQ(balanced_shard(n, size - 1, size, "x").start, even_shard(n, size - 1, size, "x").start);
    }
  }
  EXPECT_EQ(balanced_shard(172, 3, 8, "i").length, 22);
  EXPECT_EQ(balanced_shard(172, 4, 8, "i").start, 88);
  EXPECT_EQ(balanced_shard(172, 4, 8, "i").length, 21);
  EXPECT_THROW(balanced_shard(3, 0, 4, "intermediate_size"), Error);
}

TEST(Shard, GqaSplitsOrReplicatesKvHeads) {
  // 8 query heads, 4 kv heads (stories260k). tp=2: split; tp=8: one query head per rank, kv replicated.
  auto s = head_shard(8, 4, 1, 2);
  EXPECT_EQ(s.q.start, 4);
  EXPECT_EQ(s.kv.start, 2);
  EXPECT_EQ(s.kv.length, 2);
  for (int r = 0; r < 8; ++r) {
    auto t = head_shard(8, 4, r, 8);
    EXPECT_EQ(t.q.length, 1);
    EXPECT_EQ(t.kv.length, 1);
    EXPECT_EQ(t.kv.start, r / 2);
  }
  // Multi-query: every rank holds the single kv head.
  EXPECT_EQ(head_shard(6, 1, 2, 3).kv.start, 0);
  EXPECT_EQ(tp_incompatibility(8, 4, 172, 512, 8), "");  // the MLP splits unevenly (balanced_shard)
  EXPECT_EQ(tp_incompatibility(8, 4, 4, 512, 8), "intermediate_size (4) is smaller than tensor_parallel (8)");
  EXPECT_EQ(tp_incompatibility(8, 4, 172, 512, 2), "");
  EXPECT_NE(tp_incompatibility(8, 4, 172, 512, 3).find("num_attention_heads"), std::string::npos);
}

TEST(ParallelLayers, VocabParallelNllEqualsCrossEntropyWithOneRank) {
  LocalCommunicator comm;
  at::manual_seed(3);
  at::Tensor z = at::randn({37, 101}) * 4;
  at::Tensor t = at::randint(101, {37}, at::kLong);
  at::Tensor want = -at::log_softmax(z.to(at::kDouble), -1).gather(1, t.unsqueeze(1)).squeeze(1);
  EXPECT_LT((vocab_parallel_nll(z, t, 0, comm).to(at::kDouble) - want).abs().max().item<double>(), 1e-5);
}

// Simulated ranks: slices computed with LocalCommunicator and summed by hand equal the dense op.
TEST(ParallelLayers, RowAndColumnSlicesReassemble) {
  LocalCommunicator comm;
  at::manual_seed(4);
  at::Tensor x = at::randn({5, 12}), w = at::randn({9, 12}), b = at::randn({9});
  at::Tensor dense = at::linear(x, w, b);
  std::vector<at::Tensor> cols;
  for (int r = 0; r < 3; ++r) {
    Shard s = even_shard(9, r, 3, "out");
    cols.push_back(column_parallel_linear(x, w.narrow(0, s.start, s.length), b.narrow(0, s.start, s.length)));
  }
  EXPECT_LT((at::cat(cols, -1) - dense).abs().max().item<float>(), 1e-5);
  at::Tensor sum = at::zeros({5, 9});
  for (int r = 0; r < 4; ++r) {
    Shard s = even_shard(12, r, 4, "in");
    sum += row_parallel_linear(x.narrow(1, s.start, s.length), w.narrow(1, s.start, s.length), at::Tensor(), comm);
  }
  EXPECT_LT((sum + b - dense).abs().max().item<float>(), 1e-5);
}

}  // namespace
}  // namespace lminf
