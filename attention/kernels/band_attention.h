// Two-branch tiled attention with an online softmax: the kernel behind lambda, topk, streaming and
// distance_limit. With window W, the query at cache index p sees
//
//   near keys  j in [p - W + 1, p]          logit = q_near[p] . k_near[j]   (true distance)
//   far keys   j in [0, F) with p - j >= W  logit = q_far[p]  . k_far[j]    (the variant's distance)
//
// where the queries already carry the 1/sqrt(head_dim) scale (rotate_scaled folds it into the
// rotation tables, at no cost)
//
// plus an optional triangle bias. The two sets are disjoint, so no key is counted twice. Queries go
// in tiles of block_q rows; a tile's keys are its far columns and its band [i0 - W + 1, i1): W +
// block_q - 1 columns, not the original's 2W. When they are few (lambda, streaming) they form one
// score tile and one fused softmax; otherwise (distance_limit's far part, a very wide band) they go
// in key tiles of block_k columns merged by a running max / sum / accumulator per row. No T x T (or
// T x 2W) matrix is ever built. Grouped-query attention folds the query heads that share a key/value
// head into the rows, so keys and values are never repeated. Scores come from matmuls in the input
// dtype; the softmax statistics are float32 (float64 for float64 inputs; ATen's softmax accumulates
// bfloat16 in float32).
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "attention/kernels/blockwise.h"
#include "framework/transformer/rope.h"

namespace lminf {

// distance_limit's soft alternative to the lambda mask (spec section 2.3): a key j >= global with
// p - j >= local gets -tau * ln(p - local + 1 - global), the log of the number of such keys of row p.
struct TriangleBias {
  double tau = 0.0;
  int64_t local = 0;   // L
  int64_t global = 0;  // G
};

// ALiBi (MPT): near logits get -m_h * (p - j); far logits -m_h * (far_q_pos[row] - far_k_pos[j]),
// the same effective-distance description a rotary variant realises by rotating q_far and k_far.
// Positions may be fractional (floating tensors: Leaky ReRoPE); distances are formed in float32
// (float64 for float64 inputs).
struct AlibiBias {
  at::Tensor slopes;              // [H] float32, heads of q_near's head axis
  at::Tensor far_q_pos;           // [Tq] or [1] int64 or floating: the far branch's query position per row
  bool far_k_at_index = false;    // far keys at their cache index (true) or at 0 (the "stationary" key)
  at::Tensor far_k_pos;           // [F] int64 or floating: each far key's own position; when defined it
                                  // replaces far_k_at_index (self_extend's grouped keys, dca's chunk keys)
};

struct BandAttentionArgs {
  at::Tensor q_near;       // [B, H, Tq, D] queries rotated at their cache index and scaled
  at::Tensor k_near;       // [B, Hkv, Kn, D] keys rotated at their cache index; row r is cache index near_start + r
  int64_t near_start = 0;  // must be <= max(0, q_offset - W + 1): the band's first key
  at::Tensor v;            // [B, Hkv, K, Dv] values of every cache index (only visible ones are read)
  at::Tensor q_far;        // [B, H, Tq, D] queries rotated for the far branch and scaled; undefined: none
  at::Tensor k_far;        // [B, Hkv, F, D] keys of cache indices [0, F), rotated for the far branch
  int64_t q_offset = 0;    // cache index of query row 0 (= K - Tq)
  std::optional<int64_t> window;  // W >= 1; nullopt: every earlier key is near and there is no far branch
  std::optional<TriangleBias> triangle;
  std::optional<AlibiBias> alibi;  // an extra term only when set: the rotary paths are untouched
  // Each query tile's far columns and band form ONE score tile and one softmax (the fast path:
  // memory block_q x (F + W + block_q - 1) per head) when F <= block_k and W <= 16 x block_k and
  // neither the triangle bias nor the log-sum-exp is asked for; otherwise key tiles of block_k
  // columns merged by an online softmax (memory block_q x block_k per head).
  BlockwiseOptions opts;
  bool want_lse = false;  // fill BandAttentionResult::lse (forces the online path)
  // > 0: fill BandAttentionResult::key_mass with the attention mass of the last mass_rows query rows
  // (a KV-cache policy's input). The fused path sums its probabilities as it goes; the online path
  // makes a second pass over those rows' key tiles with each row's final log-sum-exp.
  int64_t mass_rows = 0;
  // Observers get each tile's scaled logits (masked entries -inf, a copy). Near tiles carry
  // k_start = abs_offset + cache index; far tiles k_start = cache index (the far keys are the first
  // tokens of the stream, kept at their cache index by every policy). A visible (query, key) pair
  // has a finite logit in exactly one tile.
  TileReport report;
};

struct BandAttentionResult {
  at::Tensor out;  // [B, H, Tq, Dv] in q's dtype
  at::Tensor lse;  // [B, H, Tq] float32 (float64 for float64 inputs): log-sum-exp of each row's logits;
                   // undefined unless want_lse
  // [B, Hkv, K] float32 (float64 for float64 inputs): for each key (cache index), its probabilities
  // summed over the last mass_rows query rows and the query heads of its kv group, far and near
  // branch together; undefined unless mass_rows > 0
  at::Tensor key_mass;
};

BandAttentionResult band_attention(const BandAttentionArgs& args);

// x ([B, H, T, D] pre-RoPE) rotated at `positions` ([T], or [1] for one position for every row;
// int64, float32 phases as RotaryEmbedding computes them) and multiplied by `scale`, which is folded
// into the cos/sin tables. Rotates 1024 rows at a time, so the only O(T) memory is the result.
at::Tensor rotate_scaled(const RotaryEmbedding& rope, const at::Tensor& x, const at::Tensor& positions, int64_t seq_len,
                         double scale);

// x under a call's position encoding at `positions`, times `scale`: rotated (rotate_scaled) when `rope`
// is set; otherwise (ALiBi, whose positions enter as the band kernel's bias) only scaled, and returned
// as is when scale == 1.
at::Tensor encode_scaled(const RotaryEmbedding* rope, const at::Tensor& x, const at::Tensor& positions,
                         int64_t seq_len, double scale);

// The far branch's ALiBi description when `slopes` is defined (see AlibiBias), else nullopt.
std::optional<AlibiBias> alibi_far(const at::Tensor& slopes, const at::Tensor& far_q_pos, bool far_k_at_index);
// The same with explicit far key positions ([F], see AlibiBias::far_k_pos).
std::optional<AlibiBias> alibi_far(const at::Tensor& slopes, const at::Tensor& far_q_pos, const at::Tensor& far_k_pos);

// x ([B, H, T, D]) with row t multiplied by row_scale[t] ([T] float64 or float32), in float32
// (float64 for float64 inputs) before the cast back: a per-query logit scale such as ReRoPE's
// log-length scaling, applied to queries that already carry 1/sqrt(head_dim). Undefined: x as is.
at::Tensor scale_rows(const at::Tensor& x, const at::Tensor& row_scale);

// Every key visible to every query row (no causal mask): the inter-chunk views of dual chunk
// attention. Key tiles of block_k columns merged by an online softmax (memory block_q x block_k per
// head), grouped-query heads folded into rows as in band_attention. Observers get each tile's logits
// with q_start = q_start_abs + row and k_start = k_start_abs + column.
struct RectangleAttentionArgs {
  at::Tensor q;  // [B, H, Tq, D] encoded and scaled queries
  at::Tensor k;  // [B, Hkv, F, D] encoded keys
  at::Tensor v;  // [B, Hkv, F, Dv]
  std::optional<AlibiBias> alibi;  // far_q_pos [Tq] or [1] and far_k_pos [F]: logit -= m_h * (q_pos - k_pos)
  BlockwiseOptions opts;
  TileReport report;
  int64_t q_start_abs = 0;  // absolute position of query row 0 and key 0, for the report
  int64_t k_start_abs = 0;
};

// Output [B, H, Tq, Dv] in q's dtype and each row's log-sum-exp (float32; float64 for float64 inputs).
BandAttentionResult rectangle_attention(const RectangleAttentionArgs& args);

// Merges two attention results over disjoint key sets of the same rows by their log-sum-exps:
// out = out_a * exp(lse_a - lse) + out_b * exp(lse_b - lse), lse = log(exp(lse_a) + exp(lse_b)).
// out_*: [..., Dv], lse_*: [...] (float32/64). Returns out in out_a's dtype.
BandAttentionResult merge_attention(const BandAttentionResult& a, const BandAttentionResult& b);

}  // namespace lminf
