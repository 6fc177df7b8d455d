// Two-component PCA of feature vectors, and a score for how far a group of points (the first tokens
// of each sequence) sits from the rest.
#pragma once

#include <ATen/ATen.h>

#include <array>

namespace lminf {

struct Pca2 {
  at::Tensor mean;        // [d] float64
  at::Tensor components;  // [2, d] float64, unit rows; sign fixed so each row's largest |entry| is positive
  at::Tensor scores;      // [n, 2] float64: (x - mean) . components^T
  std::array<double, 2> explained_variance_ratio{0, 0};
};

// x: [n, d], n >= 2, any floating dtype. The top two right singular vectors of the centred data.
// With d == 1 the second component is zero.
Pca2 pca_2d(const at::Tensor& x);

// How far the `group` points sit from the others, in units of the others' spread:
//   separation = |mean(group) - mean(rest)| / sqrt(mean over rest of |x - mean(rest)|^2)
// 0: the group's centroid is the rest's; 1: one RMS radius of the rest away. x: [n, d]; group: bool
// [n] with at least one point on each side (NaN otherwise).
double separation_score(const at::Tensor& x, const at::Tensor& group);

}  // namespace lminf
