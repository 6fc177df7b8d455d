#include "attention/variants/infllm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "attention/variants/band_call.h"
#include "framework/core/error.h"

namespace lminf {
namespace {

std::string key_value(const std::string& key, int64_t v) { return "attention." + key + "=" + std::to_string(v); }

// The parameters, after failing on the first invalid one (the loader reports them all before).
const InfLLMParams& checked(const InfLLMParams& p) {
  const std::vector<std::string> problems = p.problems();
  if (!problems.empty()) fail(problems.front());
  return p;
}

// The local window and the sinks: lambda with L = n_local, G = n_init, D = n_local - 1.
LambdaOptions local_and_sinks(const InfLLMParams& p, BlockwiseOptions tiles) {
  return LambdaOptions{p.n_local, p.n_init, p.n_local - 1, tiles};
}

// Memory blocks formed before the chunk starting at cache index c0 (the reference forms a block once
// all its tokens and n_local more have been processed, after the sinks are complete).
int64_t blocks_before(const InfLLMParams& p, int64_t c0) {
  return std::max<int64_t>(0, c0 - p.n_local - p.n_init) / p.memory_block_size;
}

// The indices of the n largest entries along the last axis, largest first; equal entries (identical
// blocks or tokens, e.g. a repeated token in a model without positions in its keys) in index order.
at::Tensor top_indices(const at::Tensor& score, int64_t n) {
  return std::get<1>(at::sort(score, /*stable=*/true, -1, /*descending=*/true)).narrow(-1, 0, n);
}

// The representative keys [B, Hkv, n_blocks, D] (dtype acc) of the first n_blocks blocks of the
// middle of pre-RoPE keys k [B, Hkv, K, D]: the mean of the repr_topk keys of each block with the
// largest dot product with the block's mean key.
at::Tensor block_reprs(const at::Tensor& k, const InfLLMParams& p, int64_t n_blocks, at::ScalarType acc) {
  const int64_t B = k.size(0), Hkv = k.size(1), D = k.size(3), bs = p.memory_block_size;
  at::Tensor kb = k.narrow(2, p.n_init, n_blocks * bs).to(acc).view({B, Hkv, n_blocks, bs, D});
  at::Tensor mean = kb.mean(3);
  if (p.repr_topk >= bs) return mean;
  at::Tensor typical = at::matmul(kb, mean.unsqueeze(-1)).squeeze(-1);  // [B, Hkv, n_blocks, bs]
  at::Tensor idx = top_indices(typical, p.repr_topk);
  return at::gather(kb, 3, idx.unsqueeze(-1).expand({B, Hkv, n_blocks, p.repr_topk, D})).mean(3);
}

// x [B, Hkv, u, n, D]: rows `tok` [B, Hkv, u, S] of the cache tensor t [B, Hkv, K, D] per unit.
at::Tensor gather_rows(const at::Tensor& t, const at::Tensor& tok) {
  const int64_t u = tok.size(2), D = t.size(3);
  at::Tensor src = t.unsqueeze(2).expand({t.size(0), t.size(1), u, t.size(2), D});
  return at::gather(src, 3, tok.unsqueeze(-1).expand({tok.size(0), tok.size(1), u, tok.size(3), D}));
}

}  // namespace

std::vector<std::string> InfLLMParams::problems() const {
  std::vector<std::string> p;
  if (n_init < 0) p.push_back(key_value("n_init", n_init) + " must be >= 0 (0: no attention sinks)");
  if (n_local < 2)
    p.push_back(key_value("n_local", n_local) + " must be >= 2: keys beyond the window are seen at distance n_local - 1");
  if (memory_block_size < 1) p.push_back(key_value("memory_block_size", memory_block_size) + " must be >= 1");
  if (topk < 1) p.push_back(key_value("topk", topk) + " must be >= 1 (use attention.variant: lambda for no retrieval)");
  if (repr_topk < 1 || repr_topk > memory_block_size)
    p.push_back(key_value("repr_topk", repr_topk) + " must be in [1, attention.memory_block_size] (" +
                std::to_string(memory_block_size) + ")");
  if (exc_block_size < 1 || exc_block_size > n_local)
    p.push_back(key_value("exc_block_size", exc_block_size) + " must be in [1, attention.n_local] (" +
                std::to_string(n_local) + "), as in the reference");
  return p;
}

InfLLMAttention::InfLLMAttention(const InfLLMParams& p, BlockwiseOptions tiles)
    : p_(checked(p)), tiles_(tiles), lambda_(local_and_sinks(p, tiles)) {}

std::vector<std::string> InfLLMAttention::model_problems(const ModelConfig& model, int tensor_parallel) const {
  std::vector<std::string> p = sliding_window_problems("n_local", p_.n_local, model);
  if (!p_.perhead && tensor_parallel > 1)
    p.push_back("attention.variant infllm with attention.perhead: false does not support tensor parallelism: it "
                "retrieves by scores summed over all heads, which no rank holds (set attention.perhead: true, or "
                "run with tensor parallel size 1)");
  return p;
}

at::Tensor InfLLMAttention::forward(const AttentionCall& call) const {
  require_relative_positions(call, name());
  BandAttentionResult local = lambda_.attend(call, /*want_lse=*/true);  // the window and the sinks
  const int64_t Tq = call.q.size(2), e = p_.exc_block_size;
  const int64_t last_chunk = ((Tq - 1) / e) * e;
  const int64_t n_blocks = blocks_before(p_, call.q_offset + last_chunk);
  const at::Tensor repr = n_blocks > 0 ? block_reprs(call.k, p_, n_blocks, local.lse.scalar_type()) : at::Tensor();
  for (int64_t r0 = 0; r0 < Tq; r0 += e) {
    const int64_t rows = std::min(e, Tq - r0);
    BandAttentionResult mem = memory_part(call, r0, rows, repr);
    if (!mem.out.defined()) continue;
    BandAttentionResult loc{local.out.narrow(2, r0, rows), local.lse.narrow(2, r0, rows), {}};
    local.out.narrow(2, r0, rows).copy_(merge_attention(loc, mem).out);
  }
  return local.out;
}

at::Tensor InfLLMAttention::select_blocks(const AttentionCall& call, const at::Tensor& q_far, const at::Tensor& repr,
                                          int64_t n_blocks) const {
  const int64_t B = call.q.size(0), H = call.q.size(1), Hkv = call.k.size(1), g = H / Hkv;
  const int64_t u = p_.perhead ? g : 1;
  const int64_t n = std::min(p_.topk, n_blocks);
  if (n_blocks <= p_.topk)
    return at::arange(n_blocks, at::TensorOptions().dtype(at::kLong).device(call.q.device()))
        .view({1, 1, 1, n})
        .expand({B, Hkv, u, n});
  // The chunk's mean query (rotated to n_local - 1) against each block's representative key;
  // ALiBi's bias is the same for every block, so the query is scored unbiased.
  at::Tensor q_mean = q_far.to(repr.scalar_type()).mean(2).view({B, Hkv, g, 1, -1});
  at::Tensor r = repr.narrow(2, 0, n_blocks).unsqueeze(2);  // [B, Hkv, 1, nb, D]
  // An elementwise product and sum, so identical blocks score identically (a matmul's edge tiles may
  // round differently).
  at::Tensor s = (q_mean * r).sum(-1);                                    // [B, Hkv, g, nb]
  if (p_.perhead) return top_indices(s, n);                               // [B, Hkv, g, n]
  return top_indices(s.sum({1, 2}), n).view({B, 1, 1, n}).expand({B, Hkv, 1, n});  // per sequence
}

BandAttentionResult InfLLMAttention::memory_part(const AttentionCall& call, int64_t row0, int64_t rows,
                                                 const at::Tensor& repr) const {
  const int64_t B = call.q.size(0), H = call.q.size(1), D = call.q.size(3), K = call.k.size(2);
  const int64_t Hkv = call.k.size(1), g = H / Hkv, Dv = call.v.size(3), bs = p_.memory_block_size;
  const int64_t c0 = call.q_offset + row0, c1 = c0 + rows;
  const int64_t n_blocks = blocks_before(p_, c0);
  const int64_t tail_lo = p_.n_init + n_blocks * bs, n_tail = std::max<int64_t>(0, c1 - p_.n_local - tail_lo);
  if (n_blocks == 0 && n_tail == 0) return {};
  const auto acc = call.q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(call.q.device());
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  // Every memory key is seen at distance n_local - 1: the query rotated there, the key unrotated.
  at::Tensor q_far = encode_scaled(call.rope, call.q.narrow(2, row0, rows), at::full({1}, p_.n_local - 1, at::kLong),
                                   K, scale);  // [B, H, rows, D]
  at::Tensor blocks = n_blocks > 0 ? select_blocks(call, q_far, repr, n_blocks) : at::empty({B, Hkv, 1, 0}, long_opts);
  const int64_t u = blocks.size(2), n_sel = blocks.size(3);
  // Cache indices of the memory columns: the retrieved blocks' tokens, then the tail [tail_lo, c1 - n_local).
  at::Tensor in_block = at::arange(bs, long_opts);
  at::Tensor tok = (p_.n_init + blocks.unsqueeze(-1) * bs + in_block).view({B, Hkv, u, n_sel * bs});
  tok = at::cat({tok, at::arange(tail_lo, tail_lo + n_tail, long_opts).expand({B, Hkv, u, n_tail})}, 3);
  const int64_t S = tok.size(3), R = (g / u) * rows;  // rows per unit: its query heads' rows
  at::Tensor k_mem = gather_rows(call.k, tok), v_mem = gather_rows(call.v, tok);  // [B, Hkv, u, S, D]
  at::Tensor s = at::matmul(q_far.reshape({B, Hkv, u, R, D}), k_mem.transpose(-1, -2)).to(acc);  // [B, Hkv, u, R, S]
  if (call.alibi_slopes.defined())
    s.sub_(call.alibi_slopes.to(acc).view({Hkv, g, 1}).expand({Hkv, g, rows}).reshape({1, Hkv, u, R, 1}) *
           static_cast<double>(p_.n_local - 1));
  // A tail key is visible from query p once it left p's window: p - j >= n_local.
  at::Tensor p_row = (c0 + at::arange(rows, long_opts)).repeat({g / u}).view({R, 1});
  at::Tensor visible = (p_row - tok.view({B, Hkv, u, 1, S})) >= p_.n_local;
  s.masked_fill_(visible.logical_not(), -std::numeric_limits<double>::infinity());
  report_memory(call, row0, s.view({B, H, rows, S}), tok.unsqueeze(3).expand({B, Hkv, u, g / u, S}).reshape({B, H, S}),
                c1 - p_.n_local);
  at::Tensor lse = at::logsumexp(s, -1);  // [B, Hkv, u, R]; -inf: the row sees no memory key
  at::Tensor w = at::exp(s - lse.unsqueeze(-1)).nan_to_num(0.0);
  at::Tensor out = at::matmul(w, v_mem.to(acc));  // [B, Hkv, u, R, Dv]
  return {out.view({B, H, rows, Dv}), lse.view({B, H, rows}), {}};
}

// The memory logits s [B, H, rows, S] of columns at cache indices pos [B, H, S] as tiles over
// [n_init, k_hi) of key_block_size columns: each retrieved or tail key in the tile of its position,
// -inf elsewhere. Memory keys are at distance >= n_local, so no pair is also in a band or sink tile.
void InfLLMAttention::report_memory(const AttentionCall& call, int64_t row0, const at::Tensor& s, const at::Tensor& pos,
                                    int64_t k_hi) const {
  if (!call.observers || !call.observers->wants(Site::kAttnLogits, call.layer)) return;
  const int64_t B = s.size(0), H = s.size(1), rows = s.size(2), S = s.size(3), width = tiles_.block_k;
  const int64_t abs_offset = call.abs_q_start - call.q_offset;
  at::Tensor col = pos.unsqueeze(2).expand({B, H, rows, S});
  for (int64_t w0 = p_.n_init; w0 < k_hi; w0 += width) {
    const int64_t w = std::min(width, k_hi - w0);
    at::Tensor inside = (col >= w0) & (col < w0 + w);
    // Columns outside the tile go to a spare column w, dropped.
    at::Tensor tile = at::full({B, H, rows, w + 1}, -std::numeric_limits<double>::infinity(), s.options());
    tile.scatter_(3, at::where(inside, col - w0, at::full_like(col, w)), s);
    Observation o;
    o.site = Site::kAttnLogits;
    o.layer = call.layer;
    o.data = tile.narrow(3, 0, w);
    o.q_start = call.abs_q_start + row0;
    o.k_start = abs_offset + w0;
    o.head_offset = call.head_offset;
    call.observers->emit(o);
  }
}

}  // namespace lminf
