#include "models/families/llama.h"

#include "framework/core/error.h"
#include "models/families/family_common.h"
#include "parallel/parallel_layers.h"

namespace lminf {

LlamaModel::LlamaModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts)
    : FamilyModel(config, opts, config.n_head_kv), rope_(RotaryEmbedding::for_model(config)) {
  const int64_t h = config.hidden_size, D = config.head_dim, I = config.intermediate_size, V = config.vocab_size;
  const int64_t q_out = config.n_head * D, kv_out = config.n_head_kv * D;
  const Shard qs = scaled(heads_.q, D), kvs = scaled(heads_.kv, D);
  WeightLoader ld{ckpt, dtype_, opts.device};

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
    L.bq = ld.optional_slice(config.attention_bias, p + "self_attn.q_proj.bias", {q_out}, 0, qs);
    L.bk = ld.optional_slice(config.attention_bias, p + "self_attn.k_proj.bias", {kv_out}, 0, kvs);
    L.bv = ld.optional_slice(config.attention_bias, p + "self_attn.v_proj.bias", {kv_out}, 0, kvs);
    L.bo = ld.optional_full(config.attention_bias, p + "self_attn.o_proj.bias", {h});
    L.mlp_norm = ld.full(p + "post_attention_layernorm.weight", {h});
    L.w_gate = ld.slice(p + "mlp.gate_proj.weight", {I, h}, 0, ffn_);
    L.w_up = ld.slice(p + "mlp.up_proj.weight", {I, h}, 0, ffn_);
    L.w_down = ld.slice(p + "mlp.down_proj.weight", {h, I}, 1, ffn_);
    L.b_gate = ld.optional_slice(config.mlp_bias, p + "mlp.gate_proj.bias", {I}, 0, ffn_);
    L.b_up = ld.optional_slice(config.mlp_bias, p + "mlp.up_proj.bias", {I}, 0, ffn_);
    L.b_down = ld.optional_full(config.mlp_bias, p + "mlp.down_proj.bias", {h});
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
  check_forward_args("LlamaModel", ids, ctx);
  const int64_t B = ids.size(0), T = ids.size(1), D = config_.head_dim;
  const int64_t Hl = heads_.q.length, Hkvl = heads_.kv.length;
  const ObserverSet* obs = active_observers(ctx);
  LayerAttention la;
  la.rope = &rope_;
  la.sliding_window = config_.sliding_window;
  la.head_offset = heads_.q.start;
  la.kv_head_offset = heads_.kv.start;
  la.abs_start = cache ? cache->n_fed() : 0;

  // ids may live on the CPU (tasks build them there); the model runs where its weights are.
  at::Tensor x = vocab_parallel_embedding(ids.to(embed_.device()), embed_, vocab_.start, *tp_);  // [B, T, hidden]
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    const LlamaLayer& L = layers_[static_cast<size_t>(l)];
    at::Tensor h = rms_norm(x, L.attn_norm);
    auto heads = [&](const at::Tensor& w, const at::Tensor& b, int64_t n) {  // [B, n, T, D]
      return column_parallel_linear(h, w, b).view({B, T, n, D}).transpose(1, 2).contiguous();
    };
    la.layer = l;
    at::Tensor a = run_attention_layer(heads(L.wq, L.bq, Hl), heads(L.wk, L.bk, Hkvl), heads(L.wv, L.bv, Hkvl), cache,
                                       ctx, la);  // [B, T, Hl D]
    x = x + row_parallel_linear(a, L.wo, L.bo, *tp_);

    h = rms_norm(x, L.mlp_norm);
    at::Tensor gate = column_parallel_linear(h, L.w_gate, L.b_gate);
    at::Tensor up = column_parallel_linear(h, L.w_up, L.b_up);
    x = x + row_parallel_linear(at::silu(gate) * up, L.w_down, L.b_down, *tp_);
    if (obs && obs->wants(Site::kHidden, l)) obs->emit({Site::kHidden, l, x, la.abs_start, 0, 0});
  }
  if (cache) cache->advance(T);
  return rms_norm(x, norm_);
}

at::Tensor LlamaModel::logits(const at::Tensor& hidden) {
  return vocab_parallel_logits(hidden, lm_head_, at::Tensor(), *tp_);
}

at::Tensor LlamaModel::token_nll(const at::Tensor& hidden, const at::Tensor& targets) {
  return vocab_parallel_token_nll(hidden, targets, lm_head_, at::Tensor(), vocab_.start, *tp_);
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
  std::vector<const at::Tensor*> t = {&embed_, &norm_};
  if (!lm_head_.is_same(embed_)) t.push_back(&lm_head_);  // tied: counted once
  for (const auto& L : layers_)
    for (const at::Tensor* x : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.wo, &L.bo, &L.mlp_norm,
                                &L.w_gate, &L.w_up, &L.b_gate, &L.b_up, &L.w_down, &L.b_down})
      t.push_back(x);
  return tensor_bytes(t);
}

}  // namespace lminf
