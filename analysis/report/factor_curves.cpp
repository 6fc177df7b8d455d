#include "analysis/report/factor_curves.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/core/error.h"

namespace lminf {

Curve logit_bound_by_distance(const at::Tensor& logits, const at::Tensor& positions) {
  if (logits.dim() != 3 || positions.dim() != 1 || positions.size(0) != logits.size(0))
    fail("logit_bound_by_distance: logits [R, S, T] and positions [R] expected, got ", logits.sizes(), " and ",
         positions.sizes());
  const int64_t R = logits.size(0), S = logits.size(1), T = logits.size(2);
  at::Tensor d = at::arange(T, at::kLong).view({1, T});           // distances
  at::Tensor p = positions.to(at::kLong).view({R, 1});
  at::Tensor has = d <= p;                                         // [R, T]
  at::Tensor key = at::clamp_min(p - d, 0);                        // key index at distance d
  at::Tensor by_d = logits.to(at::kDouble).gather(2, key.view({R, 1, T}).expand({R, S, T}));  // [R, S, T]
  // Masked keys (-inf) do not lower the bound; the self logit (d = 0) is always finite for a causal query.
  at::Tensor bound = std::get<0>(by_d.cummax(2));
  bound = at::where(has.view({R, 1, T}), bound, at::full_like(bound, std::numeric_limits<double>::quiet_NaN()));
  return mean_std_over_lines(bound.reshape({R * S, T}));
}

Curve bucket_bound(const at::Tensor& bucket_max) {
  const int64_t nb = bucket_max.size(-1);
  at::Tensor lines = bucket_max.to(at::kDouble).reshape({-1, nb});
  at::Tensor bound = std::get<0>(lines.cummax(1));  // empty leading buckets stay -inf: missing
  return mean_std_over_lines(bound);
}

Curve entropy_by_position(const at::Tensor& entropy) {
  return mean_std_over_lines(entropy.reshape({-1, entropy.size(-1)}));
}

Curve log_bound_by_position(const at::Tensor& visible_keys) {
  at::Tensor v = visible_keys.to(at::kDouble).reshape({-1, visible_keys.size(-1)});
  return mean_std_over_lines(at::where(v > 0, v.log(), at::full_like(v, std::numeric_limits<double>::quiet_NaN())));
}

Curve nll_by_position(const at::Tensor& token_nll) { return mean_std_over_lines(token_nll); }

double window_mean(const Curve& c, int64_t lo, int64_t hi) {
  double s = 0;
  int64_t k = 0;
  for (int64_t i = std::max<int64_t>(lo, 0); i < std::min(hi, c.size()); ++i) {
    if (!std::isfinite(c.mean[static_cast<size_t>(i)])) continue;
    s += c.mean[static_cast<size_t>(i)];
    ++k;
  }
  return k > 0 ? s / static_cast<double>(k) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace lminf
