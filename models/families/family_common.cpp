// The shared base of the families (family_common.h).
#include "models/families/family_common.h"

#include "framework/core/error.h"
#include "parallel/parallel_layers.h"
#include "framework/core/linear.h"

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

Shard FamilyModel::share(Part part) const {
  switch (part) {
    case Part::kVocab: return vocab_;
    case Part::kQHeads: return scaled(heads_.q, config_.head_dim);
    case Part::kKvHeads: return scaled(heads_.kv, config_.head_dim);
    case Part::kFfn: return ffn_;
    case Part::kWhole: break;
  }
  LMINF_CHECK(false, "share() of a whole tensor");
  return Shard{};
}

namespace {

// Throws naming the checkpoint and the tensor when a loaded (CPU) weight holds NaN or infinity: a
// model with one such weight computes NaN everywhere, silently. Checked in chunks of 2^24 values, so
// no mask as large as an embedding is ever allocated.
void check_finite(const Checkpoint& ckpt, const std::string& name, const at::Tensor& t) {
  if (!t.is_floating_point()) return;
  const at::Tensor flat = t.reshape({-1});
  constexpr int64_t kChunk = int64_t{1} << 24;
  for (int64_t i = 0; i < flat.numel(); i += kChunk) {
    const at::Tensor part = flat.narrow(0, i, std::min(kChunk, flat.numel() - i));
    if (at::isfinite(part).all().item<bool>()) continue;
    fail(ckpt.dir().string(), ": tensor '", name, "' holds NaN or infinite values (", (~at::isfinite(part)).sum().item<int64_t>(),
         " among its elements ", i, "..", i + part.numel() - 1, "): the checkpoint is damaged (re-download or re-save it)");
  }
}

}  // namespace

void FamilyModel::load_weights(Checkpoint& ckpt, const LoadOptions& opts, std::vector<WeightSpec> weights) {
  for (const WeightSpec& w : weights) {
    LMINF_CHECK(w.slot, w.name, " has no slot");
    ckpt.check_shape(w.name, w.shape);
    const int64_t extent = w.shape[static_cast<size_t>(w.dim)];
    const Shard s = w.part == Part::kWhole ? Shard{0, extent} : share(w.part);
    if (w.blocks == 1 && s.start == 0 && s.length == extent) {
      const at::Tensor t = ckpt.load(w.name, dtype_);
      check_finite(ckpt, w.name, t);
      *w.slot = t.to(opts.device);
      continue;
    }
    // Each block of `dim` (q, k, v of a fused projection) is cut to the same rows of its own.
    const int64_t block = extent / w.blocks;
    std::vector<at::Tensor> parts;
    for (int64_t b = 0; b < w.blocks; ++b) {
      parts.push_back(ckpt.load_slice(w.name, w.dim, b * block + s.start, s.length, dtype_));
      check_finite(ckpt, w.name, parts.back());
    }
    *w.slot = (parts.size() == 1 ? parts[0] : at::cat(parts, w.dim).contiguous()).to(opts.device);
  }
  weights_ = std::move(weights);
}

std::vector<std::pair<std::string, at::Tensor>> FamilyModel::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> p;
  for (const WeightSpec& w : weights_) p.emplace_back(w.name, *w.slot);
  return p;
}

int64_t FamilyModel::weight_bytes() const {
  int64_t n = 0;
  for (const WeightSpec& w : weights_) n += w.slot->numel() * w.slot->element_size();
  return n;
}

at::Tensor FamilyModel::logits(const at::Tensor& hidden) {
  at::Tensor local = lminf::linear(hidden, head_w_, head_b_).to(at::kFloat);  // [B, T, V_local]
  if (tp_->size() == 1) return local;
  return tp_->all_gather(local.contiguous(), -1);
}

at::Tensor FamilyModel::token_nll(const at::Tensor& hidden, const at::Tensor& targets) {
  const int64_t B = hidden.size(0), T = hidden.size(1), h = hidden.size(2);
  at::Tensor flat = hidden.reshape({B * T, h});
  at::Tensor tgt = targets.reshape({B * T}).to(hidden.device());
  at::Tensor out = at::empty({B * T}, hidden.options().dtype(at::kFloat));
  // Row chunks bound the [rows, V_local] logits (32000 x 1024 = 128 MiB float32).
  const int64_t chunk = 1024;
  for (int64_t s = 0; s < B * T; s += chunk) {
    const int64_t n = std::min(chunk, B * T - s);
    at::Tensor z = lminf::linear(flat.narrow(0, s, n), head_w_, head_b_);
    out.narrow(0, s, n).copy_(vocab_parallel_nll(z, tgt.narrow(0, s, n), vocab_.start, *tp_));
  }
  return out.view({B, T});
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
    call.cache = &lc;
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
  KeyMass mass;  // what the cache policy needs of this call (evicting policies: attention mass)
  if (cache) mass.rows = cache->policy().mass_rows(T, call.k.size(2));
  if (mass.rows > 0) call.key_mass = &mass;
  at::Tensor a = ctx.attention->forward(call);  // [B, Hl, T, D]
  if (mass.rows > 0 && !mass.sum.defined())
    fail("attention.variant ", ctx.attention->name(), " reports no attention mass, which attention.cache.policy ",
         cache->policy().name(), " needs");
  if (cache) cache->policy().trim(cache->layer(la.layer), mass);
  if (obs && obs->wants(Site::kAttnOut, la.layer))
    obs->emit({Site::kAttnOut, la.layer, a, la.abs_start, 0, la.head_offset});
  return a.transpose(1, 2).reshape({B, T, Hl * D});
}

ModelConfig layer_norm_preset(ModelConfig sized, const std::string& model_type) {
  ModelConfig c = std::move(sized);
  c.model_type = model_type;
  c.n_head_kv = c.n_head;
  c.head_dim = c.hidden_size / c.n_head;
  c.intermediate_size = 4 * c.hidden_size;
  c.layer_norm_eps = 1e-5;
  return c;
}

}  // namespace lminf
