// ALiBi slopes as MPT (llm-foundry gen_slopes, HF build_mpt_alibi_tensor) computes them: for
// P = the next power of two >= n_head, slope_i = 2^(-(i+1) * bias_max / P), i = 0..P-1; when n_head
// is not a power of two the heads take the odd-indexed slopes first, then the even-indexed ones,
// truncated to n_head. (BLOOM's formula differs for such head counts; MPT checkpoints use this one.)
#pragma once

#include <ATen/ATen.h>

namespace lminf {

// [n_head] float32 slopes of every (global) head; slice [head_offset, head_offset + H_local) per rank.
at::Tensor alibi_slopes(int64_t n_head, double alibi_bias_max);

}  // namespace lminf
