// Megatron-style tensor-parallel building blocks over an explicit Communicator. With the local
// communicator they reduce to the plain dense operations.
#pragma once

#include <ATen/ATen.h>

#include "parallel/communicator.h"

namespace lminf {

// Y = X A^T + b with A split by output rows: A = [A_1; ...; A_p], rank r computes Y_r = X A_r^T + b_r.
// x: [..., in] (replicated), w: [out/p, in], b: [out/p] or undefined. Output [..., out/p], local.
at::Tensor column_parallel_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// Y = X A^T + b with A split by input columns: A = [A_1 ... A_p], X = [X_1 ... X_p] (already local),
// Y = sum_r X_r A_r^T, all-reduced, then b added once. x: [..., in/p], w: [out, in/p]. Output replicated.
at::Tensor row_parallel_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, Communicator& comm);

// Embedding with the vocabulary split: rank r holds rows [vocab_start, vocab_start + V/p). Ids outside
// the shard contribute zero; the all-reduce assembles the full embedding. ids: [B, T] int64.
at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& weight, int64_t vocab_start,
                                    Communicator& comm);

// Per-token negative log-likelihood from vocab-split logits without gathering them:
//   nll = log(sum_v exp(z_v - m)) + m - z_target, m = max_v z_v, each term all-reduced over ranks.
// logits: [N, V/p] (any float dtype; computed in float32), targets: [N] int64 global ids. Output [N] float32.
at::Tensor vocab_parallel_nll(const at::Tensor& logits, const at::Tensor& targets, int64_t vocab_start,
                              Communicator& comm);

}  // namespace lminf
