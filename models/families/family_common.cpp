#include "models/families/family_common.h"

#include "framework/core/error.h"
#include "parallel/parallel_layers.h"

namespace lminf {

FamilyModel::FamilyModel(const ModelConfig& config, const LoadOptions& opts, int64_t n_head_kv)
    : config_(config), dtype_(opts.dtype), tp_(opts.tp ? opts.tp : &local_) {
  const int tp = tp_->size(), rank = tp_->rank();
  const std::string problem =
      tp_incompatibility(config.n_head, n_head_kv, config.intermediate_size, config.vocab_size, tp);
  if (!problem.empty()) fail(config.source.string(), ": cannot shard over ", tp, " ranks: ", problem);
  heads_ = head_shard(config.n_head, n_head_kv, rank, tp);
  // The MLP rows need not split evenly: gate/up rows and down columns of one rank pair up, and the
  // down projection's partial sums all have shape [.., hidden].
  ffn_ = balanced_shard(config.intermediate_size, rank, tp, "intermediate_size");
  vocab_ = even_shard(config.vocab_size, rank, tp, "vocab_size");
}

at::Tensor WeightLoader::full(const std::string& name, std::vector<int64_t> shape) const {
  ckpt.check_shape(name, shape);
  return ckpt.load(name, dtype).to(device);
}

at::Tensor WeightLoader::slice(const std::string& name, std::vector<int64_t> shape, int64_t dim, Shard s) const {
  ckpt.check_shape(name, shape);
  if (s.start == 0 && s.length == shape[static_cast<size_t>(dim)]) return ckpt.load(name, dtype).to(device);
  return ckpt.load_slice(name, dim, s.start, s.length, dtype).to(device);
}

at::Tensor WeightLoader::optional_full(bool present, const std::string& name, std::vector<int64_t> shape) const {
  return present ? full(name, std::move(shape)) : at::Tensor();
}

at::Tensor WeightLoader::optional_slice(bool present, const std::string& name, std::vector<int64_t> shape,
                                        int64_t dim, Shard s) const {
  return present ? slice(name, std::move(shape), dim, s) : at::Tensor();
}

void check_forward_args(const char* model, const at::Tensor& ids, const ForwardContext& ctx) {
  if (!ctx.attention) fail(model, "::forward: no attention variant");
  if (ids.dim() != 2) fail(model, "::forward: ids must be [B, T], got ", ids.sizes());
}

const ObserverSet* active_observers(const ForwardContext& ctx) {
  return ctx.observers && !ctx.observers->empty() ? ctx.observers : nullptr;
}

at::Tensor run_attention_layer(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, KVCache* cache,
                               const ForwardContext& ctx, const LayerAttention& la) {
  const int64_t B = q.size(0), Hl = q.size(1), T = q.size(2), D = q.size(3);
  const ObserverSet* obs = active_observers(ctx);
  if (obs) {
    if (obs->wants(Site::kQuery, la.layer)) obs->emit({Site::kQuery, la.layer, q, la.abs_start, 0, la.head_offset});
    if (obs->wants(Site::kKey, la.layer)) obs->emit({Site::kKey, la.layer, k, la.abs_start, 0, la.kv_head_offset});
  }
  AttentionCall call;
  call.q = q;
  if (cache) {
    LayerCache& lc = cache->layer(la.layer);
    lc.append(k, v);
    call.k = lc.keys();
    call.v = lc.values();
  } else {
    call.k = k;
    call.v = v;
  }
  call.q_offset = call.k.size(2) - T;
  call.abs_q_start = la.abs_start;
  call.rope = la.rope;
  call.alibi_slopes = la.alibi_slopes;
  call.sliding_window = la.sliding_window;
  call.layer = la.layer;
  call.head_offset = la.head_offset;
  call.observers = obs;
  at::Tensor a = ctx.attention->forward(call);  // [B, Hl, T, D]
  if (cache) cache->policy().trim(cache->layer(la.layer));
  if (obs && obs->wants(Site::kAttnOut, la.layer))
    obs->emit({Site::kAttnOut, la.layer, a, la.abs_start, 0, la.head_offset});
  return a.transpose(1, 2).reshape({B, T, Hl * D});
}

at::Tensor vocab_parallel_logits(const at::Tensor& hidden, const at::Tensor& w, const at::Tensor& b, Communicator& tp) {
  at::Tensor local = at::linear(hidden, w, b).to(at::kFloat);  // [B, T, V_local]
  if (tp.size() == 1) return local;
  return tp.all_gather(local.contiguous(), -1);
}

at::Tensor vocab_parallel_token_nll(const at::Tensor& hidden, const at::Tensor& targets, const at::Tensor& w,
                                    const at::Tensor& b, int64_t vocab_start, Communicator& tp) {
  const int64_t B = hidden.size(0), T = hidden.size(1), h = hidden.size(2);
  at::Tensor flat = hidden.reshape({B * T, h});
  at::Tensor tgt = targets.reshape({B * T}).to(hidden.device());
  at::Tensor out = at::empty({B * T}, hidden.options().dtype(at::kFloat));
  const int64_t chunk = 1024;  // bounds the [rows, V_local] logits buffer
  for (int64_t s = 0; s < B * T; s += chunk) {
    const int64_t n = std::min(chunk, B * T - s);
    at::Tensor z = at::linear(flat.narrow(0, s, n), w, b);
    out.narrow(0, s, n).copy_(vocab_parallel_nll(z, tgt.narrow(0, s, n), vocab_start, tp));
  }
  return out.view({B, T});
}

int64_t tensor_bytes(const std::vector<const at::Tensor*>& tensors) {
  int64_t n = 0;
  for (const at::Tensor* t : tensors)
    if (t->defined()) n += t->numel() * t->element_size();
  return n;
}

}  // namespace lminf
