// Plain, obviously-correct references for the position-aware variants: each variant's rule written
// out per (query, key) pair -- visible or not, the position the query is rotated to, the position the
// key is rotated to (the effective distance is their difference, since <R(a) q, R(b) k> depends only
// on a - b), and an additive bias -- then dense float64 attention over the explicit [Tq, K] tables.
// O(Tq x K x D) memory: tests only. Positions are cache indices; query row i sits at q_offset + i.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "framework/transformer/rope.h"

namespace lminf {

struct AttentionRule {
  at::Tensor visible;  // [Tq, K] bool (or [B, H, Tq, K])
  at::Tensor q_pos;    // [Tq, K] int64 (float64 where positions are fractional): position the query is rotated to
  at::Tensor k_pos;    // [Tq, K] int64 (float64 where positions are fractional): position the key is rotated to
  at::Tensor bias;     // [Tq, K] float64, added to the scaled logit
  at::Tensor q_scale;  // [Tq] float64: multiplies row i's scaled q . k (not the bias); undefined: 1

  at::Tensor effective_distance() const { return q_pos - k_pos; }
};

// Every earlier key at its true distance.
AttentionRule vanilla_rule(int64_t Tq, int64_t K, int64_t q_offset);
// Spec 2.1: d < L true distance; j < G beyond it at D_eff = min(D, K-1) (query at D_eff, key at 0);
// D nullopt: true distance; others masked.
AttentionRule lambda_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t L, int64_t G, std::optional<int64_t> D);
// StreamingLLM: d < R true distance; sinks j < S beyond it with the query at min(p, S+R-1), key at j.
AttentionRule streaming_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t S, int64_t R);
// Every earlier key at min(d, D) (query at D, key at 0 when d >= D); triangle bias -tau*ln(p-L+1-G)
// on keys j >= G with d >= L.
AttentionRule distance_limit_rule(int64_t Tq, int64_t K, int64_t q_offset, std::optional<int64_t> D, int64_t L,
                                  int64_t G, double tau);

// Self-Extend (Jin et al. 2024): d < W at the true distance; d >= W at grouped positions, the query at
// p / G + W - W / G and the key at j / G (integer division).
AttentionRule self_extend_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t G, int64_t W);
// ReRoPE (Su 2023): d < w at the true distance; beyond, the query at w and the key at 0 (distance w),
// or with leaky_k = k the query at (p + w (k - 1)) / k and the key at j / k (distance w + (d - w) / k,
// fractional positions). log_scale_base N: row p's q . k times max(1, ln(p + 1) / ln(N)).
AttentionRule rerope_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t w, std::optional<double> leaky_k,
                          std::optional<int64_t> log_scale_base);
// Dual chunk attention (An et al. 2024), chunks of c = chunk_size - local_window: keys at j % c; the
// query at p % c for keys of its own chunk, at c + min(p % c, local_window) for the previous chunk,
// at c + min(c - 1, local_window) for every earlier one.
AttentionRule dca_rule(int64_t Tq, int64_t K, int64_t q_offset, int64_t chunk_size, int64_t local_window);

// How the reference realises a rule's positions. Rotary: q and k rotated at q_pos / k_pos with the
// tables of rope.cos_sin (their layout -- rotate-half or GPT-J's interleaved pairs -- and rot_dim: only
// the first rot_dim features turn), written out here per layout. ALiBi: no rotation; the logit gets
// -slope_h * (q_pos - k_pos).
struct RuleEncoding {
  const RotaryEmbedding* rope = nullptr;
  at::Tensor alibi_slopes;  // [H] slopes of q's heads

  RuleEncoding(const RotaryEmbedding& r) : rope(&r) {}  // NOLINT: implicit, rotary callers pass a rope
  static RuleEncoding alibi(const at::Tensor& slopes) {
    RuleEncoding e;
    e.alibi_slopes = slopes;
    return e;
  }

 private:
  RuleEncoding() = default;
};

// Scaled logits [B, H, Tq, K] float64 of pre-RoPE q [B, H, Tq, D] and k [B, Hkv, K, D] under `rule`
// (rotation tables from rope.cos_sin(..., seq_len)); invisible entries -inf.
at::Tensor rule_logits(const at::Tensor& q, const at::Tensor& k, const AttentionRule& rule, const RuleEncoding& enc,
                       int64_t seq_len, double scale);
// softmax(rule_logits) @ v: [B, H, Tq, Dv] float64.
at::Tensor rule_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const AttentionRule& rule, const RuleEncoding& enc, int64_t seq_len,
                                    double scale);

// Spec 2.5 on top of lambda_rule: the last query row also sees, per (sequence, head), the top_k
// middle keys (G <= j <= p - L) with the highest <R(insert_at) q, k_j>, each at distance insert_at,
// when there are at least top_k of them. Returns the rule expanded to [B, H, Tq, K].
AttentionRule topk_rule(const at::Tensor& q, const at::Tensor& k, int64_t q_offset, int64_t L, int64_t G,
                        std::optional<int64_t> D, int64_t top_k, int64_t insert_at, const RuleEncoding& enc,
                        int64_t seq_len, double scale);

// InfLLM's rule (attention/variants/infllm.h), its sizes as plain numbers.
struct InfLLMRuleSizes {
  int64_t n_init = 0, n_local = 1, block = 1, topk = 1, repr_topk = 1, chunk = 1;
  bool perhead = false;
};
// lambda_rule(L = n_local, G = n_init, D = n_local - 1), plus, for the queries of each chunk of `chunk`
// rows (from row 0) starting at cache index c0, the keys j >= n_init with p - j >= n_local that lie
// past the nb = floor((c0 - n_local - n_init) / block) memory blocks or in one of the topk blocks (all
// while nb <= topk) whose representative key scores highest against the chunk's mean query rotated
// to n_local - 1 (per (sequence, head) with perhead, else summed over the heads), each at distance
// n_local - 1. A representative key is the mean of the repr_topk keys of the block with the largest
// dot product with the block's mean key. Both rankings are recomputed here in float64, equal scores
// in index order; a gap between the last chosen and the first left-out score below the rounding bound
// of q's dtype throws (the inputs do not decide the selection) unless both candidates hold the same
// keys up to rounding. Returns the rule expanded to [B, H, Tq, K].
AttentionRule infllm_rule(const at::Tensor& q, const at::Tensor& k, int64_t q_offset, const InfLLMRuleSizes& sizes,
                          const RuleEncoding& enc, int64_t seq_len, double scale);

}  // namespace lminf
