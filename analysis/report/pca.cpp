#include "analysis/report/pca.h"

#include <cmath>
#include <limits>

#include "framework/core/error.h"

namespace lminf {

Pca2 pca_2d(const at::Tensor& x_in) {
  if (x_in.dim() != 2 || x_in.size(0) < 2) fail("PCA needs [n, d] with n >= 2 points, got ", x_in.sizes());
  at::Tensor x = x_in.to(at::kDouble);
  const int64_t d = x.size(1);
  Pca2 p;
  p.mean = x.mean(0);
  at::Tensor c = x - p.mean;
  auto [u, s, vh] = at::linalg_svd(c, /*full_matrices=*/false);
  const int64_t k = std::min<int64_t>(2, vh.size(0));
  at::Tensor comps = at::zeros({2, d}, at::kDouble);
  comps.narrow(0, 0, k).copy_(vh.narrow(0, 0, k));
  for (int64_t i = 0; i < k; ++i) {
    at::Tensor row = comps[i];
    const int64_t j = row.abs().argmax().item<int64_t>();
    if (row[j].item<double>() < 0) row.neg_();
  }
  p.components = comps;
  p.scores = at::matmul(c, comps.t());
  const double total = (s * s).sum().item<double>();
  for (int64_t i = 0; i < k; ++i)
    p.explained_variance_ratio[static_cast<size_t>(i)] = total > 0 ? (s[i] * s[i]).item<double>() / total : 0.0;
  return p;
}

double separation_score(const at::Tensor& x_in, const at::Tensor& group) {
  at::Tensor x = x_in.to(at::kDouble);
  at::Tensor g = group.to(at::kBool);
  const int64_t n_group = g.sum().item<int64_t>();
  if (n_group == 0 || n_group == x.size(0)) return std::numeric_limits<double>::quiet_NaN();
  at::Tensor first = x.index_select(0, g.nonzero().squeeze(1));
  at::Tensor rest = x.index_select(0, g.logical_not().nonzero().squeeze(1));
  at::Tensor mu_rest = rest.mean(0);
  const double spread = std::sqrt((rest - mu_rest).pow(2).sum(1).mean().item<double>());
  const double gap = (first.mean(0) - mu_rest).norm().item<double>();
  if (spread == 0) return gap == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return gap / spread;
}

}  // namespace lminf
