// Blockwise causal attention with an online softmax: queries in tiles of block_q rows, keys in tiles
// of block_k columns, running max/sum/accumulator per row, so memory is O(block_q x block_k) per head
// and no T x T score matrix ever exists. Grouped-query attention folds the query heads that share a
// key/value head into the row dimension, so keys and values are never repeated in memory.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "framework/transformer/observer.h"

namespace lminf {

struct BlockwiseOptions {
  int64_t block_q = 256;
  int64_t block_k = 1024;
};

// Where tiles are reported: observers wanting Site::kAttnLogits at `layer` get each tile's scaled
// logits (float32, masked entries -inf) with absolute query/key positions.
struct TileReport {
  const ObserverSet* observers = nullptr;
  int64_t layer = 0;
  int64_t abs_offset = 0;  // absolute position of cache index 0
  int64_t head_offset = 0;
};

// q: [B, H, Tq, D] already position-encoded; k, v: [B, Hkv, K, D], H % Hkv == 0.
// Query row i sits at cache index q_offset + i; it sees key j iff j <= q_offset + i and, with a
// window W, q_offset + i - j < W. Logits are (q . k) * scale, softmax in float32.
// Returns [B, H, Tq, D] in q's dtype.
at::Tensor blockwise_causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      int64_t q_offset, std::optional<int64_t> window, double scale,
                                      const BlockwiseOptions& opts, const TileReport& report = {});

struct BlockwiseResult {
  at::Tensor out;       // [B, H, Tq, Dv] in q's dtype
  at::Tensor key_mass;  // [B, Hkv, K] float32 (float64 for float64 inputs); undefined unless asked
};

// The same, and with mass_rows > 0 the attention mass of the last mass_rows query rows: for each key,
// its softmax probabilities summed over those rows and the query heads of its kv group. A second
// pass over the key tiles of those rows' query tiles recomputes each logit tile and weighs it with
// the row's final log-sum-exp (exp(s - lse)): no T x T matrix, and no cost when not asked.
BlockwiseResult blockwise_causal_attention_mass(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                int64_t q_offset, std::optional<int64_t> window, double scale,
                                                const BlockwiseOptions& opts, const TileReport& report,
                                                int64_t mass_rows);

}  // namespace lminf
