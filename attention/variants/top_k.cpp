#include "attention/variants/top_k.h"

#include <cmath>
#include <limits>
#include <string>

#include "framework/core/error.h"

namespace lminf {

std::vector<std::string> TopKParams::problems() const {
  std::vector<std::string> p = lambda.problems();
  auto key_value = [](const std::string& key, int64_t v) { return "attention." + key + "=" + std::to_string(v); };
  if (top_k <= 0)
    p.push_back(key_value("top_k", top_k) + " must be > 0 (use attention.variant: lambda for no retrieval)");
  if (top_k_from_layer < 0) p.push_back(key_value("top_k_from_layer", top_k_from_layer) + " must be >= 0");
  if (top_k_to_layer <= top_k_from_layer)
    p.push_back(key_value("top_k_to_layer", top_k_to_layer) + " must be > attention.top_k_from_layer (" +
                std::to_string(top_k_from_layer) + "): no layer would retrieve");
  if (top_k_insert_at < 0) p.push_back(key_value("top_k_insert_at", top_k_insert_at) + " must be >= 0");
  return p;
}

TopKOptions TopKOptions::from(const TopKParams& p) {
  return TopKOptions{p.top_k, p.top_k_from_layer, p.top_k_to_layer, p.top_k_insert_at};
}

TopKAttention::TopKAttention(const LambdaOptions& lambda, const TopKOptions& top_k) : lambda_(lambda), top_k_(top_k) {
  if (top_k_.k < 1) fail("attention.top_k=", top_k_.k, " must be > 0 (use attention.variant: lambda for no retrieval)");
  if (top_k_.from_layer < 0) fail("attention.top_k_from_layer=", top_k_.from_layer, " must be >= 0");
  if (top_k_.insert_at < 0) fail("attention.top_k_insert_at=", top_k_.insert_at, " must be >= 0");
}

std::vector<std::string> TopKAttention::model_problems(const ModelConfig& model, int tensor_parallel) const {
  std::vector<std::string> p = lambda_.model_problems(model, tensor_parallel);
  if (top_k_.from_layer >= model.n_layer)
    p.push_back("attention.top_k_from_layer=" + std::to_string(top_k_.from_layer) + " but the model has " +
                std::to_string(model.n_layer) + " layers: no layer would retrieve (lower it or use variant lambda)");
  return p;
}

VariantSupport TopKAttention::support() const {
  VariantSupport s = lambda_.support();
  s.key_mass = false;
  return s;
}

at::Tensor TopKAttention::forward(const AttentionCall& call) const {
  LMINF_CHECK(!call.key_mass || call.key_mass->rows == 0, "topk reports no attention mass (attention.cache)");
  at::Tensor lambda_out = lambda_.forward(call);
  if (call.layer < top_k_.from_layer || call.layer >= top_k_.to_layer) return lambda_out;
  const int64_t Tq = call.q.size(2), K = call.k.size(2);
  const int64_t L = lambda_.options().local_branch, G = lambda_.options().global_branch;
  const int64_t p = call.q_offset + Tq - 1;                   // cache index of the last query
  const int64_t mid_lo = std::min(G, K), mid_hi = p - L + 1;  // middle keys [G, p - L + 1)
  const int64_t n_mid = mid_hi - mid_lo;
  if (n_mid < top_k_.k) return lambda_out;
  // The last row's lambda part again, with its log-sum-exp, to merge the retrieved keys into.
  AttentionCall last_call = call;
  last_call.q = call.q.narrow(2, Tq - 1, 1);
  last_call.q_offset = call.q_offset + Tq - 1;
  last_call.abs_q_start = call.abs_q_start + Tq - 1;
  last_call.observers = nullptr;  // its tiles were reported with the whole call
  BandAttentionResult last = lambda_.attend(last_call, /*want_lse=*/true);

  const int64_t B = call.q.size(0), H = call.q.size(1), D = call.q.size(3);
  const int64_t Hkv = call.k.size(1), Dv = call.v.size(3), g = H / Hkv, k = top_k_.k;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const auto acc_t = last.lse.scalar_type();
  // Scores of the middle keys, unrotated, against the last query rotated to insert_at.
  // ALiBi: the query unrotated, and every candidate biased by -m * insert_at.
  at::Tensor q_last = call.q.narrow(2, Tq - 1, 1);
  if (call.rope) q_last = call.rope->rotate(q_last, at::full({1}, top_k_.insert_at, at::kLong), K);
  at::Tensor k_mid = call.k.narrow(2, mid_lo, n_mid);  // [B, Hkv, n_mid, D]
  at::Tensor s = at::matmul(q_last.reshape({B, Hkv, g, D}), k_mid.transpose(-1, -2)).to(acc_t).mul_(scale);
  if (call.alibi_slopes.defined())
    s.sub_(call.alibi_slopes.to(acc_t).view({Hkv, g, 1}) * static_cast<double>(top_k_.insert_at));
  auto [s_top, idx] = s.topk(k, -1);  // [B, Hkv, g, k] per (sequence, head)
  // The chosen values: gather along the key axis of each kv head's middle.
  at::Tensor v_mid = call.v.narrow(2, mid_lo, n_mid);  // [B, Hkv, n_mid, Dv]
  at::Tensor v_sel = at::gather(v_mid.unsqueeze(2).expand({B, Hkv, g, n_mid, Dv}), 3,
                                idx.unsqueeze(-1).expand({B, Hkv, g, k, Dv}));  // [B, Hkv, g, k, Dv]
  at::Tensor lse_top = at::logsumexp(s_top, -1);                                // [B, Hkv, g]
  at::Tensor w = at::exp(s_top - lse_top.unsqueeze(-1));
  at::Tensor out_top = at::matmul(w.unsqueeze(-2), v_sel.to(acc_t)).squeeze(-2);  // [B, Hkv, g, Dv]

  if (call.observers && call.observers->wants(Site::kAttnLogits, call.layer)) {
    // The middle of the last row as one tile: the chosen logits, -inf elsewhere.
    at::Tensor tile = at::full({B, Hkv, g, n_mid}, -std::numeric_limits<double>::infinity(), s.options());
    tile.scatter_(3, idx, s_top);
    Observation o;
    o.site = Site::kAttnLogits;
    o.layer = call.layer;
    o.data = tile.view({B, H, 1, n_mid});
    o.q_start = call.abs_q_start + Tq - 1;
    o.k_start = call.abs_q_start - call.q_offset + mid_lo;
    o.head_offset = call.head_offset;
    call.observers->emit(o);
  }

  BandAttentionResult top{out_top.reshape({B, H, 1, Dv}), lse_top.reshape({B, H, 1}), at::Tensor()};
  lambda_out.narrow(2, Tq - 1, 1).copy_(merge_attention(last, top).out);
  return lambda_out;
}

}  // namespace lminf
