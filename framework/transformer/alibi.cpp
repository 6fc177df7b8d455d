#include "framework/transformer/alibi.h"

#include "framework/core/error.h"

namespace lminf {

at::Tensor alibi_slopes(int64_t n_head, double alibi_bias_max) {
  if (n_head < 1) fail("ALiBi needs at least one head, got ", n_head);
  int64_t P = 1;
  while (P < n_head) P *= 2;
  // As MPT: float32 exponents (i+1) * bias_max / P, then 1 / 2^e.
  at::Tensor e = at::arange(1, P + 1, at::kLong).to(at::kFloat) * (alibi_bias_max / static_cast<double>(P));
  at::Tensor slopes = 1.0 / at::pow(2.0, e);
  if (P != n_head) slopes = at::cat({slopes.slice(0, 1, P, 2), slopes.slice(0, 0, P, 2)}).narrow(0, 0, n_head);
  return slopes.to(at::kFloat).contiguous();
}

}  // namespace lminf
