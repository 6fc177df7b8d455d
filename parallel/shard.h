// Which part of each weight a tensor-parallel rank holds. Megatron-Core vocabulary:
//   column-parallel  Y = X A, A split by output features (columns of A^T... HF stores [out, in]):
//                    rank r holds rows [r*out/p, (r+1)*out/p) of the HF [out, in] weight;
//   row-parallel     Y = X A, A split by input features; each rank holds columns of the HF weight,
//                    computes a partial sum, and the partial sums are all-reduced.
#pragma once

#include <cstdint>
#include <string>

namespace lminf {

struct Shard {
  int64_t start = 0;
  int64_t length = 0;
};

// Splits n items evenly over `size` ranks; throws naming `what` when n % size != 0.
Shard even_shard(int64_t n, int rank, int size, const std::string& what);

// Splits n items over `size` ranks as evenly as possible: the first n % size ranks hold one item
// more (intermediate_size 172 over 8 ranks: 4 x 22 then 4 x 21). Throws naming `what` when n < size.
// Used where the split is local to a rank pair of column- and row-parallel weights (the MLP), so
// nothing needs equal shapes across ranks.
Shard balanced_shard(int64_t n, int rank, int size, const std::string& what);

// Attention heads of rank `rank` under tensor parallelism `tp`: query heads split evenly; key/value
// heads split when divisible by tp, otherwise replicated so each rank holds the kv heads its query
// heads read (GQA with tp > n_head_kv).
struct HeadShard {
  Shard q;   // query heads
  Shard kv;  // key/value heads
  int64_t group_size() const { return q.length / kv.length; }
};
HeadShard head_shard(int64_t n_head, int64_t n_head_kv, int rank, int tp);

// Reasons a model cannot be split over tp ranks (empty if it can); checked before any weight is read.
std::string tp_incompatibility(int64_t n_head, int64_t n_head_kv, int64_t intermediate_size, int64_t vocab_size,
                               int tp);

}  // namespace lminf
