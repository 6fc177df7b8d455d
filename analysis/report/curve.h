// A curve with a spread: mean and sample standard deviation (ddof 1) over many lines, at each x.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace lminf {

struct Curve {
  std::vector<double> mean;  // [X], NaN where no line has a value
  std::vector<double> std;   // [X], NaN where fewer than two lines have a value
  std::vector<int64_t> n;    // [X] lines with a value (finite) at x
  int64_t size() const { return static_cast<int64_t>(mean.size()); }
};

// lines: [L, X]; NaN and +-inf entries are missing values.
Curve mean_std_over_lines(const at::Tensor& lines);

// Exponential moving average s_t = gamma s_{t-1} + (1 - gamma) x_t, started at the first value
// (s_0 = x_0, so the start is not biased towards 0); NaN inputs carry the last value.
std::vector<double> ema(const std::vector<double>& x, double gamma);

}  // namespace lminf
