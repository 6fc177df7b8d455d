#include "models/families/gptj.h"

#include <cmath>

#include "framework/core/error.h"
#include "models/families/family_common.h"
#include "parallel/parallel_layers.h"

namespace lminf {

GptjModel::GptjModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts)
    : FamilyModel(config, opts, /*n_head_kv=*/config.n_head), rope_(RotaryEmbedding::for_model(config)) {
  const int64_t h = config.hidden_size, D = config.head_dim, I = config.intermediate_size, V = config.vocab_size;
  const Shard qs = scaled(heads_.q, D);
  WeightLoader ld{ckpt, dtype_, opts.device};
  wte_ = ld.slice("transformer.wte.weight", {V, h}, 0, vocab_);
  ln_f_w_ = ld.full("transformer.ln_f.weight", {h});
  ln_f_b_ = ld.full("transformer.ln_f.bias", {h});
  lm_head_w_ = ld.slice("lm_head.weight", {V, h}, 0, vocab_);
  lm_head_b_ = ld.slice("lm_head.bias", {V}, 0, vocab_);
  layers_.resize(static_cast<size_t>(config.n_layer));
  for (int64_t i = 0; i < config.n_layer; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    GptjLayer& L = layers_[static_cast<size_t>(i)];
    L.ln_w = ld.full(p + "ln_1.weight", {h});
    L.ln_b = ld.full(p + "ln_1.bias", {h});
    L.wq = ld.slice(p + "attn.q_proj.weight", {h, h}, 0, qs);
    L.wk = ld.slice(p + "attn.k_proj.weight", {h, h}, 0, qs);
    L.wv = ld.slice(p + "attn.v_proj.weight", {h, h}, 0, qs);
    L.wo = ld.slice(p + "attn.out_proj.weight", {h, h}, 1, qs);
    L.w_in = ld.slice(p + "mlp.fc_in.weight", {I, h}, 0, ffn_);
    L.b_in = ld.slice(p + "mlp.fc_in.bias", {I}, 0, ffn_);
    L.w_out = ld.slice(p + "mlp.fc_out.weight", {h, I}, 1, ffn_);
    L.b_out = ld.full(p + "mlp.fc_out.bias", {h});
  }
}

at::Tensor GptjModel::activation(const at::Tensor& x) const {
  // gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), ATen's tanh approximation.
  return at::gelu(x, config_.hidden_act == "gelu_new" ? "tanh" : "none");
}

at::Tensor GptjModel::forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) {
  check_forward_args("GptjModel", ids, ctx);
  const int64_t B = ids.size(0), T = ids.size(1), D = config_.head_dim, Hl = heads_.q.length;
  const ObserverSet* obs = active_observers(ctx);
  LayerAttention la;
  la.rope = &rope_;
  la.head_offset = la.kv_head_offset = heads_.q.start;
  la.abs_start = cache ? cache->n_fed() : 0;

  at::Tensor x = vocab_parallel_embedding(ids.to(wte_.device()), wte_, vocab_.start, *tp_);  // [B, T, hidden]
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    const GptjLayer& L = layers_[static_cast<size_t>(l)];
    at::Tensor h = at::layer_norm(x, {x.size(-1)}, L.ln_w, L.ln_b, config_.layer_norm_eps);
    auto heads = [&](const at::Tensor& w) {
      return column_parallel_linear(h, w, at::Tensor()).view({B, T, Hl, D}).transpose(1, 2).contiguous();
    };
    la.layer = l;
    at::Tensor a = run_attention_layer(heads(L.wq), heads(L.wk), heads(L.wv), cache, ctx, la);  // [B, T, Hl D]
    at::Tensor m = activation(column_parallel_linear(h, L.w_in, L.b_in));                      // [B, T, I_local]
    // Both branches are row-parallel partial sums: one all-reduce, then fc_out's bias once.
    at::Tensor partial = (at::linear(a, L.wo) + at::linear(m, L.w_out)).contiguous();
    tp_->all_reduce(partial);
    x = x + partial + L.b_out;
    if (obs && obs->wants(Site::kHidden, l)) obs->emit({Site::kHidden, l, x, la.abs_start, 0, 0});
  }
  if (cache) cache->advance(T);
  return at::layer_norm(x, {x.size(-1)}, ln_f_w_, ln_f_b_, config_.layer_norm_eps);
}

at::Tensor GptjModel::logits(const at::Tensor& hidden) {
  return vocab_parallel_logits(hidden, lm_head_w_, lm_head_b_, *tp_);
}

at::Tensor GptjModel::token_nll(const at::Tensor& hidden, const at::Tensor& targets) {
  return vocab_parallel_token_nll(hidden, targets, lm_head_w_, lm_head_b_, vocab_.start, *tp_);
}

std::vector<std::pair<std::string, at::Tensor>> GptjModel::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> p;
  p.emplace_back("transformer.wte.weight", wte_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string n = "transformer.h." + std::to_string(i) + ".";
    const GptjLayer& L = layers_[i];
    p.emplace_back(n + "ln_1.weight", L.ln_w);
    p.emplace_back(n + "ln_1.bias", L.ln_b);
    p.emplace_back(n + "attn.q_proj.weight", L.wq);
    p.emplace_back(n + "attn.k_proj.weight", L.wk);
    p.emplace_back(n + "attn.v_proj.weight", L.wv);
    p.emplace_back(n + "attn.out_proj.weight", L.wo);
    p.emplace_back(n + "mlp.fc_in.weight", L.w_in);
    p.emplace_back(n + "mlp.fc_in.bias", L.b_in);
    p.emplace_back(n + "mlp.fc_out.weight", L.w_out);
    p.emplace_back(n + "mlp.fc_out.bias", L.b_out);
  }
  p.emplace_back("transformer.ln_f.weight", ln_f_w_);
  p.emplace_back("transformer.ln_f.bias", ln_f_b_);
  p.emplace_back("lm_head.weight", lm_head_w_);
  p.emplace_back("lm_head.bias", lm_head_b_);
  return p;
}

int64_t GptjModel::weight_bytes() const {
  std::vector<const at::Tensor*> t = {&wte_, &ln_f_w_, &ln_f_b_, &lm_head_w_, &lm_head_b_};
  for (const auto& L : layers_)
    for (const at::Tensor* x : {&L.ln_w, &L.ln_b, &L.wq, &L.wk, &L.wv, &L.wo, &L.w_in, &L.b_in, &L.w_out, &L.b_out})
      t.push_back(x);
  return tensor_bytes(t);
}

}  // namespace lminf
