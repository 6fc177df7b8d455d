#include "analysis/report/curve.h"

#include <cmath>
#include <limits>

namespace lminf {

Curve mean_std_over_lines(const at::Tensor& lines_in) {
  at::Tensor x = lines_in.to(at::kDouble);
  if (x.dim() == 1) x = x.unsqueeze(0);
  at::Tensor ok = at::isfinite(x);
  at::Tensor v = at::where(ok, x, at::zeros_like(x));
  at::Tensor n = ok.sum(0);  // [X] int64
  at::Tensor nd = n.to(at::kDouble);
  at::Tensor mean = v.sum(0) / nd;
  at::Tensor dev = at::where(ok, x - mean.unsqueeze(0), at::zeros_like(x));
  at::Tensor var = dev.pow(2).sum(0) / (nd - 1);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Curve c;
  const at::Tensor m = mean.contiguous(), s = var.sqrt().contiguous(), nn = n.to(at::kLong).contiguous();
  const double* mp = m.data_ptr<double>();
  const double* sp = s.data_ptr<double>();
  const int64_t* np = nn.data_ptr<int64_t>();
  for (int64_t i = 0; i < x.size(1); ++i) {
    c.n.push_back(np[i]);
    c.mean.push_back(np[i] > 0 ? mp[i] : nan);
    c.std.push_back(np[i] > 1 ? sp[i] : nan);
  }
  return c;
}

std::vector<double> ema(const std::vector<double>& x, double gamma) {
  std::vector<double> out(x.size(), std::numeric_limits<double>::quiet_NaN());
  bool started = false;
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isfinite(x[i])) {
      s = started ? gamma * s + (1 - gamma) * x[i] : x[i];
      started = true;
    }
    if (started) out[i] = s;
  }
  return out;
}

}  // namespace lminf
