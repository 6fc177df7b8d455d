#include "parallel/parallel_layers.h"
#include "framework/core/linear.h"

namespace lminf {

at::Tensor column_parallel_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  return lminf::linear(x, w, b);
}

at::Tensor row_parallel_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, Communicator& comm) {
  at::Tensor y = lminf::linear(x, w);
  if (comm.size() > 1) comm.all_reduce(y, ReduceOp::kSum);
  if (b.defined()) y = y + b;
  return y;
}

at::Tensor vocab_parallel_embedding(const at::Tensor& ids, const at::Tensor& weight, int64_t vocab_start,
                                    Communicator& comm) {
  if (comm.size() == 1) return at::embedding(weight, ids);
  const int64_t v_local = weight.size(0);
  at::Tensor local = ids - vocab_start;
  at::Tensor outside = at::logical_or(local < 0, local >= v_local);
  at::Tensor e = at::embedding(weight, local.masked_fill(outside, 0));
  e.masked_fill_(outside.unsqueeze(-1), 0);
  comm.all_reduce(e, ReduceOp::kSum);
  return e;
}

at::Tensor vocab_parallel_nll(const at::Tensor& logits, const at::Tensor& targets, int64_t vocab_start,
                              Communicator& comm) {
  at::Tensor z = logits.to(at::kFloat);
  const int64_t v_local = z.size(-1);
  at::Tensor m = std::get<0>(z.max(-1));  // [N]
  comm.all_reduce(m, ReduceOp::kMax);
  at::Tensor sum_exp = at::exp(z - m.unsqueeze(-1)).sum(-1);
  comm.all_reduce(sum_exp, ReduceOp::kSum);
  at::Tensor local = targets - vocab_start;
  at::Tensor inside = at::logical_and(local >= 0, local < v_local);
  at::Tensor picked = z.gather(-1, local.clamp(0, v_local - 1).unsqueeze(-1)).squeeze(-1);
  picked = picked.masked_fill(at::logical_not(inside), 0);
  comm.all_reduce(picked, ReduceOp::kSum);
  return at::log(sum_exp) + m - picked;
}

}  // namespace lminf
