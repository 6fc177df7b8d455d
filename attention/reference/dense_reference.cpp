#include "attention/reference/dense_reference.h"

namespace lminf {

at::Tensor dense_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& visible, double scale) {
  const int64_t g = q.size(1) / k.size(1);
  at::Tensor qd = q.to(at::kDouble);
  at::Tensor kd = k.to(at::kDouble).repeat_interleave(g, 1);
  at::Tensor vd = v.to(at::kDouble).repeat_interleave(g, 1);
  at::Tensor s = at::matmul(qd, kd.transpose(-1, -2)) * scale;  // [B, H, Tq, K]
  at::Tensor mask = visible.to(at::kBool);
  s = s.masked_fill(at::logical_not(mask), -std::numeric_limits<double>::infinity());
  at::Tensor p = at::softmax(s, -1);
  p = at::nan_to_num(p, 0.0);  // rows with nothing visible
  return at::matmul(p, vd);
}

at::Tensor causal_visibility(int64_t Tq, int64_t K, int64_t q_offset, std::optional<int64_t> window) {
  at::Tensor qi = at::arange(q_offset, q_offset + Tq, at::kLong).unsqueeze(1);
  at::Tensor kj = at::arange(0, K, at::kLong).unsqueeze(0);
  at::Tensor vis = kj <= qi;
  if (window) vis = at::logical_and(vis, (qi - kj) < *window);
  return vis;
}

}  // namespace lminf
