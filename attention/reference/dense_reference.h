// The plain dense attention every variant is tested against: explicit [Tq, K] visibility mask,
// float64, keys and values repeated per query head. O(T^2) memory: tests only.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace lminf {

// visible[i, j]: query row i may attend to key j. Logits (q . k) * scale; rows with no visible key
// give 0. q: [B, H, Tq, D], k, v: [B, Hkv, K, D] (already position-encoded). Returns float64.
at::Tensor dense_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                     const at::Tensor& visible, double scale);

// The causal (optionally windowed) visibility mask: query i at cache index q_offset + i sees key j
// iff j <= q_offset + i and q_offset + i - j < window. [Tq, K] bool.
at::Tensor causal_visibility(int64_t Tq, int64_t K, int64_t q_offset, std::optional<int64_t> window = std::nullopt);

}  // namespace lminf
