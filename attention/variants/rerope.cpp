#include "attention/variants/rerope.h"

#include <cmath>
#include <sstream>

#include "attention/kernels/band_attention.h"
#include "attention/variants/band_call.h"
#include "framework/core/error.h"

namespace lminf {

std::vector<std::string> ReropeParams::problems() const {
  std::vector<std::string> p;
  if (window < 1)
    p.push_back("attention.window=" + std::to_string(window) + " must be >= 1 (the reference uses 512 to 1024)");
  if (leaky_k && !(std::isfinite(*leaky_k) && *leaky_k > 1.0)) {
    std::ostringstream k;
    k << *leaky_k;
    p.push_back("attention.leaky_k=" + k.str() + " must be a number > 1 (the reference uses 16), or null for plain ReRoPE");
  }
  if (log_scale_base && *log_scale_base < 2)
    p.push_back("attention.log_scale_base=" + std::to_string(*log_scale_base) +
                " must be >= 2 (the model's training length, e.g. 4096), or null for no scaling");
  return p;
}

ReropeAttention::ReropeAttention(const ReropeParams& p, BlockwiseOptions tiles) : p_(p), tiles_(tiles) {
  const std::vector<std::string> problems = p_.problems();
  if (!problems.empty()) fail(problems.front());
}

VariantSupport ReropeAttention::support() const {
  VariantSupport s;
  s.needs_relative_positions = true;  // far keys at distance w (or w + (d - w)/k)
  return s;
}

std::vector<std::string> ReropeAttention::model_problems(const ModelConfig& model, int) const {
  return sliding_window_problems("window", p_.window, model);
}

at::Tensor ReropeAttention::forward(const AttentionCall& call) const {
  require_relative_positions(call, name());
  const int64_t Tq = call.q.size(2), K = call.k.size(2), w = p_.window;
  const double scale = head_scale(call);
  BandAttentionArgs a = near_band_args(call, w, tiles_, scale);  // d < w: true distance
  at::Tensor q_pos = at::arange(call.q_offset, K, at::kLong);
  at::Tensor row_scale;  // [Tq] float64: max(1, ln(p + 1) / ln(N)), on every logit of the row
  if (p_.log_scale_base) {
    row_scale = (at::log(q_pos.to(at::kDouble) + 1.0) / std::log(static_cast<double>(*p_.log_scale_base))).clamp_min(1.0);
    a.q_near = scale_rows(a.q_near, row_scale);
  }
  if (call.q_offset + Tq - 1 >= w) {
    const int64_t F = K - w;  // keys at least w from the last query
    if (!p_.leaky_k) {
      at::Tensor at_w = at::full({1}, w, at::kLong);  // query at w, key unrotated
      a.q_far = encode_scaled(call.rope, call.q, at_w, K, scale);
      a.k_far = call.k.narrow(2, 0, F);
      a.alibi = alibi_far(call.alibi_slopes, at_w, /*far_k_at_index=*/false);
    } else {
      const double k = *p_.leaky_k;
      at::Tensor far_q = (q_pos.to(at::kDouble) + static_cast<double>(w) * (k - 1.0)) / k;
      at::Tensor far_k = at::arange(0, F, at::kLong).to(at::kDouble) / k;
      a.q_far = encode_scaled(call.rope, call.q, far_q, K, scale);
      a.k_far = encode_scaled(call.rope, call.k.narrow(2, 0, F), far_k, K, 1.0);
      a.alibi = alibi_far(call.alibi_slopes, far_q, far_k);
    }
    a.q_far = scale_rows(a.q_far, row_scale);
  }
  return band_call_output(call, band_attention(a));
}

}  // namespace lminf
