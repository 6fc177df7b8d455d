// The Llama family (model_type llama, mistral): RMSNorm, rotary embeddings (rotate-half, HF
// rope_scaling), grouped-query attention through a pluggable AttentionVariant, SwiGLU MLP, tied or
// untied head. Tensor-parallel: heads, MLP columns and the vocabulary split Megatron-style. This file
// is all the family knows: its config.json keys, its tensors, its model and its record.
#include "framework/core/error.h"
#include "framework/transformer/config_json.h"
#include "framework/transformer/rope.h"
#include "models/families/families.h"
#include "models/families/family_common.h"
#include "parallel/parallel_layers.h"

namespace lminf {
namespace {
using nlohmann::json;

// ---- config.json: the HF LlamaConfig / MistralConfig keys ----------------------------------------

// The sizes Llama requires, and the keys it reads with defaults: one ModelConfig member each.
const std::vector<ConfigKey> kLlamaSizes = {
    {"hidden_size", &ModelConfig::hidden_size, true},
    {"intermediate_size", &ModelConfig::intermediate_size, true},
    {"num_hidden_layers", &ModelConfig::n_layer, true},
    {"num_attention_heads", &ModelConfig::n_head, true},
    {"vocab_size", &ModelConfig::vocab_size, true},
};
const std::vector<ConfigKey> kLlamaOptions = {
    {"num_key_value_heads", &ModelConfig::n_head_kv},  // defaults below: n_head
    {"head_dim", &ModelConfig::head_dim},              // hidden_size / n_head
    {"max_position_embeddings", &ModelConfig::max_position_embeddings},
    {"rms_norm_eps", &ModelConfig::rms_norm_eps},
    {"rope_theta", &ModelConfig::rope_theta},
    {"tie_word_embeddings", &ModelConfig::tie_word_embeddings},
    {"attention_bias", &ModelConfig::attention_bias},
    {"mlp_bias", &ModelConfig::mlp_bias},
    {"hidden_act", &ModelConfig::hidden_act},
};

ModelConfig llama_from_json(const json& j, const std::string& where) {
  ModelConfig c;
  read_keys(j, kLlamaSizes, where, c);
  c.n_head_kv = c.n_head;
  c.head_dim = c.n_head > 0 ? c.hidden_size / c.n_head : 0;
  read_keys(j, kLlamaOptions, where, c);
  if (j.contains("rope_scaling")) c.rope_scaling = RopeScaling::from_json(j["rope_scaling"], where);
  if (j.contains("sliding_window") && !j["sliding_window"].is_null())
    c.sliding_window = require_int(j, "sliding_window", where);
  return c;
}

json llama_to_json(const ModelConfig& c) {
  json j;
  j["architectures"] = {c.model_type == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM"};
  write_keys(c, kLlamaSizes, j);
  write_keys(c, kLlamaOptions, j);
  j["rope_scaling"] = c.rope_scaling.to_json();
  j["sliding_window"] = c.sliding_window ? json(*c.sliding_window) : json(nullptr);
  return j;
}

void llama_validate(const ModelConfig& c, const std::string& where) {
  c.check_rotary_dims(where, "head_dim");
  if (c.hidden_act != "silu")
    fail(where, ": hidden_act \"", c.hidden_act, "\" is not supported for ", c.model_type, " (supported: silu)");
  if (c.rms_norm_eps <= 0) fail(where, ": rms_norm_eps must be > 0");
  if (c.rope_theta <= 1.0) fail(where, ": rope_theta must be > 1, got ", c.rope_theta);
  if (c.sliding_window && (*c.sliding_window <= 0 || *c.sliding_window > kMaxPositions))
    fail(where, ": sliding_window must be in [1, ", kMaxPositions, "] or null, got ", *c.sliding_window);
}

// The presets are Llama models.
ModelConfig as_llama(ModelConfig sized) { return sized; }

// ---- weights and model ----------------------------------------------------------------------

struct LlamaLayer {
  at::Tensor attn_norm;              // [hidden]
  at::Tensor wq, wk, wv;             // [H_local*D, hidden], [Hkv_local*D, hidden] (column-parallel)
  at::Tensor bq, bk, bv;             // [H_local*D] ... or undefined (attention_bias)
  at::Tensor wo;                     // [hidden, H_local*D] (row-parallel)
  at::Tensor bo;                     // [hidden] or undefined
  at::Tensor mlp_norm;               // [hidden]
  at::Tensor w_gate, w_up;           // [I_local, hidden] (column-parallel; I_local = I/tp, +1 on the first I%tp ranks)
  at::Tensor b_gate, b_up;           // [I_local] or undefined (mlp_bias)
  at::Tensor w_down;                 // [hidden, I_local] (row-parallel)
  at::Tensor b_down;                 // [hidden] or undefined
};

struct LlamaWeights {
  at::Tensor embed;    // [V_local, hidden] (vocab-parallel)
  at::Tensor norm;     // [hidden]
  at::Tensor lm_head;  // [V_local, hidden] (vocab-parallel); undefined when tied
  std::vector<LlamaLayer> layers;
};

// Every tensor of a Llama checkpoint (the HF names, spelled only here), bound to `w`.
std::vector<WeightSpec> llama_layout(const ModelConfig& c, LlamaWeights& w) {
  const int64_t h = c.hidden_size, D = c.head_dim, I = c.intermediate_size, V = c.vocab_size;
  const int64_t q = c.n_head * D, kv = c.n_head_kv * D;
  std::vector<WeightSpec> t;
  t.push_back(rows("model.embed_tokens.weight", {V, h}, Init::kEmbedding, Part::kVocab, w.embed));
  for_each_layer(w.layers, c.n_layer, "model.layers.", [&](const std::string& p, LlamaLayer& L) {
    t.push_back(whole(p + "input_layernorm.weight", {h}, Init::kNorm, L.attn_norm));
    t.push_back(rows(p + "self_attn.q_proj.weight", {q, h}, Init::kLinear, Part::kQHeads, L.wq));
    t.push_back(rows(p + "self_attn.k_proj.weight", {kv, h}, Init::kLinear, Part::kKvHeads, L.wk));
    t.push_back(rows(p + "self_attn.v_proj.weight", {kv, h}, Init::kLinear, Part::kKvHeads, L.wv));
    t.push_back(cols(p + "self_attn.o_proj.weight", {h, q}, Init::kOutput, Part::kQHeads, L.wo));
    if (c.attention_bias) {
      t.push_back(rows(p + "self_attn.q_proj.bias", {q}, Init::kBias, Part::kQHeads, L.bq));
      t.push_back(rows(p + "self_attn.k_proj.bias", {kv}, Init::kBias, Part::kKvHeads, L.bk));
      t.push_back(rows(p + "self_attn.v_proj.bias", {kv}, Init::kBias, Part::kKvHeads, L.bv));
      t.push_back(whole(p + "self_attn.o_proj.bias", {h}, Init::kBias, L.bo));
    }
    t.push_back(whole(p + "post_attention_layernorm.weight", {h}, Init::kNorm, L.mlp_norm));
    t.push_back(rows(p + "mlp.gate_proj.weight", {I, h}, Init::kLinear, Part::kFfn, L.w_gate));
    t.push_back(rows(p + "mlp.up_proj.weight", {I, h}, Init::kLinear, Part::kFfn, L.w_up));
    t.push_back(cols(p + "mlp.down_proj.weight", {h, I}, Init::kOutput, Part::kFfn, L.w_down));
    if (c.mlp_bias) {
      t.push_back(rows(p + "mlp.gate_proj.bias", {I}, Init::kBias, Part::kFfn, L.b_gate));
      t.push_back(rows(p + "mlp.up_proj.bias", {I}, Init::kBias, Part::kFfn, L.b_up));
      t.push_back(whole(p + "mlp.down_proj.bias", {h}, Init::kBias, L.b_down));
    }
  });
  t.push_back(whole("model.norm.weight", {h}, Init::kNorm, w.norm));
  if (!c.tie_word_embeddings) t.push_back(rows("lm_head.weight", {V, h}, Init::kLinear, Part::kVocab, w.lm_head));
  return t;
}

class LlamaModel final : public FamilyModel {
 public:
  LlamaModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts)
      : FamilyModel(config, opts, config.n_head_kv), rope_(RotaryEmbedding::for_model(config)) {
    std::vector<WeightSpec> table = llama_layout(config, w_);
    if (!config.tie_word_embeddings && !ckpt.has(table.back().name))
      fail(ckpt.dir().string(), ": no ", table.back().name, " and config.json has tie_word_embeddings=false");
    load_weights(ckpt, opts, std::move(table));
    head_w_ = config.tie_word_embeddings ? w_.embed : w_.lm_head;
  }

  at::Tensor forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) override;

 private:
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w) const;

  RotaryEmbedding rope_;
  LlamaWeights w_;
};

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
  at::Tensor x = vocab_parallel_embedding(ids.to(w_.embed.device()), w_.embed, vocab_.start, *tp_);  // [B, T, hidden]
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    const LlamaLayer& L = w_.layers[static_cast<size_t>(l)];
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
  return rms_norm(x, w_.norm);
}

}  // namespace

ModelFamily llama_family() {
  return {"llama", {"llama", "mistral"}, llama_from_json, llama_to_json, llama_validate,
          unbound_weights<LlamaWeights, llama_layout>, load_as<LlamaModel>, as_llama};
}

}  // namespace lminf
