#include "models/families/mpt.h"

#include "framework/transformer/alibi.h"
#include "framework/core/error.h"
#include "models/families/family_common.h"
#include "parallel/parallel_layers.h"

namespace lminf {

MptModel::MptModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts)
    : FamilyModel(config, opts, /*n_head_kv=*/config.n_head) {
  slopes_ = alibi_slopes(config.n_head, config.alibi_bias_max).narrow(0, heads_.q.start, heads_.q.length).contiguous().to(opts.device);
  if (ckpt.has("transformer.wpe.weight"))
    fail(ckpt.dir().string(), ": transformer.wpe.weight (learned position embeddings) is not supported; ",
         "lminf runs ALiBi MPT models");

  const int64_t h = config.hidden_size, D = config.head_dim, I = config.intermediate_size, V = config.vocab_size;
  const bool bias = !config.no_bias;
  const Shard qs = scaled(heads_.q, D);
  WeightLoader ld{ckpt, dtype_, opts.device};
  wte_ = ld.slice("transformer.wte.weight", {V, h}, 0, vocab_);
  norm_f_w_ = ld.full("transformer.norm_f.weight", {h});
  norm_f_b_ = ld.optional_full(bias, "transformer.norm_f.bias", {h});
  layers_.resize(static_cast<size_t>(config.n_layer));
  for (int64_t i = 0; i < config.n_layer; ++i) {
    const std::string p = "transformer.blocks." + std::to_string(i) + ".";
    MptLayer& L = layers_[static_cast<size_t>(i)];
    L.norm_1_w = ld.full(p + "norm_1.weight", {h});
    L.norm_1_b = ld.optional_full(bias, p + "norm_1.bias", {h});
    // Wqkv rows are [q (h) | k (h) | v (h)]: this rank's heads are the same row range in each block.
    auto qkv_rows = [&](const std::string& name, std::vector<int64_t> shape) {
      std::vector<at::Tensor> parts;
      for (int64_t b = 0; b < 3; ++b) parts.push_back(ld.slice(name, shape, 0, Shard{b * h + qs.start, qs.length}));
      return at::cat(parts, 0).contiguous();
    };
    L.wqkv = qkv_rows(p + "attn.Wqkv.weight", {3 * h, h});
    if (bias) L.bqkv = qkv_rows(p + "attn.Wqkv.bias", {3 * h});
    L.wo = ld.slice(p + "attn.out_proj.weight", {h, h}, 1, qs);
    L.bo = ld.optional_full(bias, p + "attn.out_proj.bias", {h});
    L.norm_2_w = ld.full(p + "norm_2.weight", {h});
    L.norm_2_b = ld.optional_full(bias, p + "norm_2.bias", {h});
    L.w_up = ld.slice(p + "ffn.up_proj.weight", {I, h}, 0, ffn_);
    L.b_up = ld.optional_slice(bias, p + "ffn.up_proj.bias", {I}, 0, ffn_);
    L.w_down = ld.slice(p + "ffn.down_proj.weight", {h, I}, 1, ffn_);
    L.b_down = ld.optional_full(bias, p + "ffn.down_proj.bias", {h});
  }
}

at::Tensor MptModel::layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
  return at::layer_norm(x, {x.size(-1)}, w, b, config_.layer_norm_eps);
}

at::Tensor MptModel::forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) {
  check_forward_args("MptModel", ids, ctx);
  const int64_t B = ids.size(0), T = ids.size(1), D = config_.head_dim, Hl = heads_.q.length;
  const ObserverSet* obs = active_observers(ctx);
  LayerAttention la;
  la.alibi_slopes = slopes_;
  la.head_offset = la.kv_head_offset = heads_.q.start;
  la.abs_start = cache ? cache->n_fed() : 0;

  at::Tensor x = vocab_parallel_embedding(ids.to(wte_.device()), wte_, vocab_.start, *tp_);  // [B, T, hidden]
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    const MptLayer& L = layers_[static_cast<size_t>(l)];
    at::Tensor qkv = column_parallel_linear(layer_norm(x, L.norm_1_w, L.norm_1_b), L.wqkv, L.bqkv);  // [B, T, 3 Hl D]
    if (config_.clip_qkv) qkv = qkv.clamp(-*config_.clip_qkv, *config_.clip_qkv);
    auto heads = [&](int64_t b) { return qkv.narrow(-1, b * Hl * D, Hl * D).reshape({B, T, Hl, D}).transpose(1, 2).contiguous(); };
    la.layer = l;
    at::Tensor a = run_attention_layer(heads(0), heads(1), heads(2), cache, ctx, la);
    x = x + row_parallel_linear(a, L.wo, L.bo, *tp_);
    at::Tensor up = column_parallel_linear(layer_norm(x, L.norm_2_w, L.norm_2_b), L.w_up, L.b_up);
    x = x + row_parallel_linear(at::gelu(up), L.w_down, L.b_down, *tp_);
    if (obs && obs->wants(Site::kHidden, l)) obs->emit({Site::kHidden, l, x, la.abs_start, 0, 0});
  }
  if (cache) cache->advance(T);
  return layer_norm(x, norm_f_w_, norm_f_b_);
}

at::Tensor MptModel::logits(const at::Tensor& hidden) { return vocab_parallel_logits(hidden, wte_, at::Tensor(), *tp_); }

at::Tensor MptModel::token_nll(const at::Tensor& hidden, const at::Tensor& targets) {
  return vocab_parallel_token_nll(hidden, targets, wte_, at::Tensor(), vocab_.start, *tp_);
}

std::vector<std::pair<std::string, at::Tensor>> MptModel::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> p;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    if (t.defined()) p.emplace_back(name, t);
  };
  add("transformer.wte.weight", wte_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string n = "transformer.blocks." + std::to_string(i) + ".";
    const MptLayer& L = layers_[i];
    add(n + "norm_1.weight", L.norm_1_w);
    add(n + "norm_1.bias", L.norm_1_b);
    add(n + "attn.Wqkv.weight", L.wqkv);
    add(n + "attn.Wqkv.bias", L.bqkv);
    add(n + "attn.out_proj.weight", L.wo);
    add(n + "attn.out_proj.bias", L.bo);
    add(n + "norm_2.weight", L.norm_2_w);
    add(n + "norm_2.bias", L.norm_2_b);
    add(n + "ffn.up_proj.weight", L.w_up);
    add(n + "ffn.up_proj.bias", L.b_up);
    add(n + "ffn.down_proj.weight", L.w_down);
    add(n + "ffn.down_proj.bias", L.b_down);
  }
  add("transformer.norm_f.weight", norm_f_w_);
  add("transformer.norm_f.bias", norm_f_b_);
  return p;
}

int64_t MptModel::weight_bytes() const {
  std::vector<const at::Tensor*> t = {&wte_, &norm_f_w_, &norm_f_b_};
  for (const auto& L : layers_)
    for (const at::Tensor* x : {&L.norm_1_w, &L.norm_1_b, &L.wqkv, &L.bqkv, &L.wo, &L.bo, &L.norm_2_w, &L.norm_2_b,
                                &L.w_up, &L.b_up, &L.w_down, &L.b_down})
      t.push_back(x);
  return tensor_bytes(t);
}

}  // namespace lminf
