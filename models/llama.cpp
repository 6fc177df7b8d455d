#include "models/llama.h"

#include "framework/error.h"
#include "parallel/parallel_layers.h"

namespace lminf {
namespace {

// Reads `name`, checking its full shape against config.json, and keeps rows or columns of one shard.
struct Loader {
  Checkpoint& ckpt;
  at::ScalarType dtype;
  at::Device device;  // read on the CPU (memory-mapped), then moved; a no-op on CPU runs

  at::Tensor full(const std::string& name, std::vector<int64_t> shape) const {
    ckpt.check_shape(name, shape);
    return ckpt.load(name, dtype).to(device);
  }
  // dim 0 (column-parallel: output rows) or 1 (row-parallel: input columns).
  at::Tensor slice(const std::string& name, std::vector<int64_t> shape, int64_t dim, Shard s) const {
    ckpt.check_shape(name, shape);
    if (s.start == 0 && s.length == shape[static_cast<size_t>(dim)]) return ckpt.load(name, dtype).to(device);
    return ckpt.load_slice(name, dim, s.start, s.length, dtype).to(device);
  }
  at::Tensor optional_slice(bool present, const std::string& name, std::vector<int64_t> shape, Shard s) const {
    if (!present) return at::Tensor();
    return slice(name, shape, 0, s);
  }
};

Shard scaled(Shard s, int64_t k) { return Shard{s.start * k, s.length * k}; }

}  // namespace

LlamaModel::LlamaModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts)
    : config_(config),
      dtype_(opts.dtype),
      tp_(opts.tp ? opts.tp : &local_),
      rope_(RotaryEmbedding::for_model(config)) {
  const int tp = tp_->size(), rank = tp_->rank();
  const std::string problem = tp_incompatibility(config.n_head, config.n_head_kv, config.intermediate_size,
                                                 config.vocab_size, tp);
  if (!problem.empty()) fail(config.source.string(), ": cannot shard over ", tp, " ranks: ", problem);
  heads_ = head_shard(config.n_head, config.n_head_kv, rank, tp);
  // The MLP rows need not split evenly (172 over 8 ranks: 22 or 21 rows): gate/up rows and down
  // columns of one rank pair up, and the down projection's partial sums all have shape [.., hidden].
  ffn_ = balanced_shard(config.intermediate_size, rank, tp, "intermediate_size");
  vocab_ = even_shard(config.vocab_size, rank, tp, "vocab_size");

  const int64_t h = config.hidden_size, D = config.head_dim, I = config.intermediate_size, V = config.vocab_size;
  const int64_t q_out = config.n_head * D, kv_out = config.n_head_kv * D;
  const Shard qs = scaled(heads_.q, D), kvs = scaled(heads_.kv, D);
  Loader ld{ckpt, dtype_, opts.device};

  embed_ = ld.slice("model.embed_tokens.weight", {V, h}, 0, vocab_);
  norm_ = ld.full("model.norm.weight", {h});
  if (config.tie_word_embeddings || !ckpt.has("lm_head.weight")) {
    if (!config.tie_word_embeddings)
      fail(ckpt.dir().string(), ": no lm_head.weight and config.json has tie_word_embeddings=false");
    lm_head_ = embed_;
  } else {
    lm_head_ = ld.slice("lm_head.weight", {V, h}, 0, vocab_);
  }
  layers_.resize(static_cast<size_t>(config.n_layer));
  for (int64_t i = 0; i < config.n_layer; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LlamaLayer& L = layers_[static_cast<size_t>(i)];
    L.attn_norm = ld.full(p + "input_layernorm.weight", {h});
    L.wq = ld.slice(p + "self_attn.q_proj.weight", {q_out, h}, 0, qs);
    L.wk = ld.slice(p + "self_attn.k_proj.weight", {kv_out, h}, 0, kvs);
    L.wv = ld.slice(p + "self_attn.v_proj.weight", {kv_out, h}, 0, kvs);
    L.wo = ld.slice(p + "self_attn.o_proj.weight", {h, q_out}, 1, qs);
    L.bq = ld.optional_slice(config.attention_bias, p + "self_attn.q_proj.bias", {q_out}, qs);
    L.bk = ld.optional_slice(config.attention_bias, p + "self_attn.k_proj.bias", {kv_out}, kvs);
    L.bv = ld.optional_slice(config.attention_bias, p + "self_attn.v_proj.bias", {kv_out}, kvs);
    if (config.attention_bias) L.bo = ld.full(p + "self_attn.o_proj.bias", {h});
    L.mlp_norm = ld.full(p + "post_attention_layernorm.weight", {h});
    L.w_gate = ld.slice(p + "mlp.gate_proj.weight", {I, h}, 0, ffn_);
    L.w_up = ld.slice(p + "mlp.up_proj.weight", {I, h}, 0, ffn_);
    L.w_down = ld.slice(p + "mlp.down_proj.weight", {h, I}, 1, ffn_);
    L.b_gate = ld.optional_slice(config.mlp_bias, p + "mlp.gate_proj.bias", {I}, ffn_);
    L.b_up = ld.optional_slice(config.mlp_bias, p + "mlp.up_proj.bias", {I}, ffn_);
    if (config.mlp_bias) L.b_down = ld.full(p + "mlp.down_proj.bias", {h});
  }
}

at::Tensor LlamaModel::rms_norm(const at::Tensor& x, const at::Tensor& w) const {
  // HF LlamaRMSNorm: normalise in float32, cast back, then scale.
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  xf = xf * at::rsqrt(var + config_.rms_norm_eps);
  return w * xf.to(x.scalar_type());
}

at::Tensor LlamaModel::forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) {
  if (!ctx.attention) fail("LlamaModel::forward: no attention variant");
  if (ids.dim() != 2) fail("LlamaModel::forward: ids must be [B, T], got ", ids.sizes());
  const int64_t B = ids.size(0), T = ids.size(1), D = config_.head_dim;
  const int64_t Hl = heads_.q.length, Hkvl = heads_.kv.length;
  const ObserverSet* obs = ctx.observers && !ctx.observers->empty() ? ctx.observers : nullptr;
  const int64_t q_offset = cache ? cache->size() : 0;
  const int64_t abs_start = cache ? cache->n_fed() : 0;

  // ids may live on the CPU (tasks build them there); the model runs where its weights are.
  at::Tensor x = vocab_parallel_embedding(ids.to(embed_.device()), embed_, vocab_.start, *tp_);  // [B, T, hidden]
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    const LlamaLayer& L = layers_[static_cast<size_t>(l)];
    at::Tensor h = rms_norm(x, L.attn_norm);
    at::Tensor q = column_parallel_linear(h, L.wq, L.bq).view({B, T, Hl, D}).transpose(1, 2).contiguous();
    at::Tensor k = column_parallel_linear(h, L.wk, L.bk).view({B, T, Hkvl, D}).transpose(1, 2).contiguous();
    at::Tensor v = column_parallel_linear(h, L.wv, L.bv).view({B, T, Hkvl, D}).transpose(1, 2).contiguous();
    if (obs) {
      if (obs->wants(Site::kQuery, l)) obs->emit({Site::kQuery, l, q, abs_start, 0, heads_.q.start});
      if (obs->wants(Site::kKey, l)) obs->emit({Site::kKey, l, k, abs_start, 0, heads_.kv.start});
    }
    AttentionCall call;
    call.q = q;
    if (cache) {
      LayerCache& lc = cache->layer(l);
      lc.append(k, v);
      call.k = lc.keys();
      call.v = lc.values();
    } else {
      call.k = k;
      call.v = v;
    }
    call.q_offset = call.k.size(2) - T;
    call.abs_q_start = abs_start;
    call.rope = &rope_;
    call.sliding_window = config_.sliding_window;
    call.layer = l;
    call.head_offset = heads_.q.start;
    call.observers = obs;
    at::Tensor a = ctx.attention->forward(call);  // [B, Hl, T, D]
    if (cache) cache->policy().trim(cache->layer(l));
    if (obs && obs->wants(Site::kAttnOut, l)) obs->emit({Site::kAttnOut, l, a, abs_start, 0, heads_.q.start});
    a = a.transpose(1, 2).reshape({B, T, Hl * D});
    x = x + row_parallel_linear(a, L.wo, L.bo, *tp_);

    h = rms_norm(x, L.mlp_norm);
    at::Tensor gate = column_parallel_linear(h, L.w_gate, L.b_gate);
    at::Tensor up = column_parallel_linear(h, L.w_up, L.b_up);
    x = x + row_parallel_linear(at::silu(gate) * up, L.w_down, L.b_down, *tp_);
    if (obs && obs->wants(Site::kHidden, l)) obs->emit({Site::kHidden, l, x, abs_start, 0, 0});
  }
  (void)q_offset;
  if (cache) cache->advance(T);
  return rms_norm(x, norm_);
}

at::Tensor LlamaModel::logits(const at::Tensor& hidden) {
  at::Tensor local = at::linear(hidden, lm_head_).to(at::kFloat);  // [B, T, V_local]
  if (tp_->size() == 1) return local;
  return tp_->all_gather(local.contiguous(), -1);
}

at::Tensor LlamaModel::token_nll(const at::Tensor& hidden, const at::Tensor& targets) {
  const int64_t B = hidden.size(0), T = hidden.size(1), h = hidden.size(2);
  at::Tensor flat = hidden.reshape({B * T, h});
  at::Tensor tgt = targets.reshape({B * T}).to(hidden.device());
  at::Tensor out = at::empty({B * T}, hidden.options().dtype(at::kFloat));
  // Row chunks bound the [rows, V_local] logits buffer (32000-vocab x 1024 rows = 128 MiB in float32).
  const int64_t chunk = 1024;
  for (int64_t s = 0; s < B * T; s += chunk) {
    const int64_t n = std::min(chunk, B * T - s);
    at::Tensor z = at::linear(flat.narrow(0, s, n), lm_head_);
    out.narrow(0, s, n).copy_(vocab_parallel_nll(z, tgt.narrow(0, s, n), vocab_.start, *tp_));
  }
  return out.view({B, T});
}

std::vector<std::pair<std::string, at::Tensor>> LlamaModel::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> p;
  p.emplace_back("model.embed_tokens.weight", embed_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string n = "model.layers." + std::to_string(i) + ".";
    const LlamaLayer& L = layers_[i];
    auto add = [&](const std::string& name, const at::Tensor& t) {
      if (t.defined()) p.emplace_back(n + name, t);
    };
    add("input_layernorm.weight", L.attn_norm);
    add("self_attn.q_proj.weight", L.wq);
    add("self_attn.k_proj.weight", L.wk);
    add("self_attn.v_proj.weight", L.wv);
    add("self_attn.o_proj.weight", L.wo);
    add("self_attn.q_proj.bias", L.bq);
    add("self_attn.k_proj.bias", L.bk);
    add("self_attn.v_proj.bias", L.bv);
    add("self_attn.o_proj.bias", L.bo);
    add("post_attention_layernorm.weight", L.mlp_norm);
    add("mlp.gate_proj.weight", L.w_gate);
    add("mlp.up_proj.weight", L.w_up);
    add("mlp.down_proj.weight", L.w_down);
    add("mlp.gate_proj.bias", L.b_gate);
    add("mlp.up_proj.bias", L.b_up);
    add("mlp.down_proj.bias", L.b_down);
  }
  p.emplace_back("model.norm.weight", norm_);
  if (!lm_head_.is_same(embed_)) p.emplace_back("lm_head.weight", lm_head_);
  return p;
}

int64_t LlamaModel::weight_bytes() const {
  int64_t b = 0;
  auto add = [&](const at::Tensor& t) {
    if (t.defined()) b += t.numel() * t.element_size();
  };
  add(embed_);
  add(norm_);
  if (!lm_head_.is_same(embed_)) add(lm_head_);
  for (const auto& L : layers_) {
    for (const at::Tensor* t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.wo, &L.bo, &L.mlp_norm,
                                &L.w_gate, &L.w_up, &L.b_gate, &L.b_up, &L.w_down, &L.b_down})
      add(*t);
  }
  return b;
}

}  // namespace lminf
