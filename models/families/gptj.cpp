// The GPT-J family (model_type gptj, EleutherAI): partial rotary embeddings (the first rotary_dim
// features of each head, interleaved pairs / rotate_every_two), attention and MLP in parallel on one
// LayerNorm (x + attn(ln(x)) + mlp(ln(x))), q/k/v/out without biases, gelu_new MLP with biases, an
// untied head with a bias. Tensor-parallel: the attention output and the MLP output are both
// row-parallel partial sums, so one all-reduce serves both and their biases are added once. This
// file is all the family knows: its config.json keys (HF GPTJConfig), its tensors, its model and
// its record.
#include "framework/core/error.h"
#include "framework/transformer/config_json.h"
#include "framework/transformer/rope.h"
#include "models/families/families.h"
#include "models/families/family_common.h"
#include "parallel/parallel_layers.h"
#include "framework/core/linear.h"

namespace lminf {
namespace {
using nlohmann::json;

// ---- config.json: the HF GPTJConfig keys ------------------------------------------------------

const MhaKeys kGptjSizes{"n_embd", "n_head", "n_layer", "n_positions"};
// The keys that are one ModelConfig member each (defaults set before reading them).
const std::vector<ConfigKey> kGptjOptions = {
    {"n_inner", &ModelConfig::intermediate_size},
    {"activation_function", &ModelConfig::hidden_act},
    {"layer_norm_epsilon", &ModelConfig::layer_norm_eps},
};

ModelConfig gptj_from_json(const json& j, const std::string& where) {
  ModelConfig c;
  read_mha_sizes(j, kGptjSizes, where, c);
  c.intermediate_size = 4 * c.hidden_size;
  c.hidden_act = "gelu_new";
  read_keys(j, kGptjOptions, where, c);
  c.rotary_dim = get_or<int64_t>(j, "rotary_dim", c.head_dim, where);
  c.rope_interleaved = true;
  c.tie_word_embeddings = false;
  reject_unless<bool>(j, "tie_word_embeddings", false, where, "", "GPT-J's head is lm_head.weight with a bias");
  c.lm_head_bias = true;
  return c;
}

json gptj_to_json(const ModelConfig& c) {
  json j = mha_config_json(c, "GPTJForCausalLM", kGptjSizes, kGptjOptions);
  j["rotary_dim"] = c.rotary_dims();
  j["tie_word_embeddings"] = false;
  return j;
}

void gptj_validate(const ModelConfig& c, const std::string& where) {
  c.check_rotary_dims(where, "rotary_dim");
  if (c.hidden_act != "gelu_new" && c.hidden_act != "gelu")
    fail(where, ": activation_function \"", c.hidden_act, "\" is not supported for gptj (supported: gelu_new, gelu)");
  if (c.layer_norm_eps <= 0) fail(where, ": layer_norm_epsilon must be > 0");
}

// Rotary on half of each head (interleaved pairs), gelu_new, an untied head with a bias.
ModelConfig gptj_preset(ModelConfig sized) {
  ModelConfig c = layer_norm_preset(std::move(sized), "gptj");
  c.tie_word_embeddings = false;
  c.rotary_dim = c.head_dim / 2;
  c.rope_interleaved = true;
  c.hidden_act = "gelu_new";
  c.lm_head_bias = true;
  return c;
}

// ---- weights and model ----------------------------------------------------------------------

struct GptjLayer {
  at::Tensor ln_w, ln_b;      // [hidden]
  at::Tensor wq, wk, wv;      // [H_local * D, hidden] (column-parallel)
  at::Tensor wo;              // [hidden, H_local * D] (row-parallel)
  at::Tensor w_in, b_in;      // [I_local, hidden], [I_local] (column-parallel)
  at::Tensor w_out, b_out;    // [hidden, I_local] (row-parallel), [hidden] (added once)
};

struct GptjWeights {
  at::Tensor wte;                // [V_local, hidden] (vocab-parallel)
  at::Tensor ln_f_w, ln_f_b;     // [hidden]
  at::Tensor lm_head_w;          // [V_local, hidden] (vocab-parallel)
  at::Tensor lm_head_b;          // [V_local]
  std::vector<GptjLayer> layers;
};

// Every tensor of a GPT-J checkpoint (the HF names, spelled only here), bound to `w`.
std::vector<WeightSpec> gptj_layout(const ModelConfig& c, GptjWeights& w) {
  const int64_t h = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  std::vector<WeightSpec> t;
  t.push_back(rows("transformer.wte.weight", {V, h}, Init::kEmbedding, Part::kVocab, w.wte));
  for_each_layer(w.layers, c.n_layer, "transformer.h.", [&](const std::string& p, GptjLayer& L) {
    t.push_back(whole(p + "ln_1.weight", {h}, Init::kNorm, L.ln_w));
    t.push_back(whole(p + "ln_1.bias", {h}, Init::kBias, L.ln_b));
    t.push_back(rows(p + "attn.q_proj.weight", {h, h}, Init::kLinear, Part::kQHeads, L.wq));
    t.push_back(rows(p + "attn.k_proj.weight", {h, h}, Init::kLinear, Part::kQHeads, L.wk));
    t.push_back(rows(p + "attn.v_proj.weight", {h, h}, Init::kLinear, Part::kQHeads, L.wv));
    t.push_back(cols(p + "attn.out_proj.weight", {h, h}, Init::kOutput, Part::kQHeads, L.wo));
    t.push_back(rows(p + "mlp.fc_in.weight", {I, h}, Init::kLinear, Part::kFfn, L.w_in));
    t.push_back(rows(p + "mlp.fc_in.bias", {I}, Init::kBias, Part::kFfn, L.b_in));
    t.push_back(cols(p + "mlp.fc_out.weight", {h, I}, Init::kOutput, Part::kFfn, L.w_out));
    t.push_back(whole(p + "mlp.fc_out.bias", {h}, Init::kBias, L.b_out));
  });
  t.push_back(whole("transformer.ln_f.weight", {h}, Init::kNorm, w.ln_f_w));
  t.push_back(whole("transformer.ln_f.bias", {h}, Init::kBias, w.ln_f_b));
  t.push_back(rows("lm_head.weight", {V, h}, Init::kLinear, Part::kVocab, w.lm_head_w));
  t.push_back(rows("lm_head.bias", {V}, Init::kBias, Part::kVocab, w.lm_head_b));
  return t;
}

class GptjModel final : public FamilyModel {
 public:
  GptjModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts)
      : FamilyModel(config, opts, /*n_head_kv=*/config.n_head), rope_(RotaryEmbedding::for_model(config)) {
    load_weights(ckpt, opts, gptj_layout(config, w_));
    head_w_ = w_.lm_head_w;
    head_b_ = w_.lm_head_b;
  }

  at::Tensor forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) override;

 private:
  at::Tensor activation(const at::Tensor& x) const;

  RotaryEmbedding rope_;  // rotary_dim features, interleaved layout
  GptjWeights w_;
};

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

  at::Tensor x = vocab_parallel_embedding(ids.to(w_.wte.device()), w_.wte, vocab_.start, *tp_);  // [B, T, hidden]
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    const GptjLayer& L = w_.layers[static_cast<size_t>(l)];
    at::Tensor h = at::layer_norm(x, {x.size(-1)}, L.ln_w, L.ln_b, config_.layer_norm_eps);
    auto heads = [&](const at::Tensor& w) {
      return column_parallel_linear(h, w, at::Tensor()).view({B, T, Hl, D}).transpose(1, 2).contiguous();
    };
    la.layer = l;
    at::Tensor a = run_attention_layer(heads(L.wq), heads(L.wk), heads(L.wv), cache, ctx, la);  // [B, T, Hl D]
    at::Tensor m = activation(column_parallel_linear(h, L.w_in, L.b_in));                      // [B, T, I_local]
    // Both branches are row-parallel partial sums: one all-reduce, then fc_out's bias once.
    at::Tensor partial = (lminf::linear(a, L.wo) + lminf::linear(m, L.w_out)).contiguous();
    tp_->all_reduce(partial);
    x = x + partial + L.b_out;
    if (obs && obs->wants(Site::kHidden, l)) obs->emit({Site::kHidden, l, x, la.abs_start, 0, 0});
  }
  if (cache) cache->advance(T);
  return at::layer_norm(x, {x.size(-1)}, w_.ln_f_w, w_.ln_f_b, config_.layer_norm_eps);
}

}  // namespace

ModelFamily gptj_family() {
  return {"gptj", {"gptj"}, gptj_from_json, gptj_to_json, gptj_validate,
          unbound_weights<GptjWeights, gptj_layout>, load_as<GptjModel>, gptj_preset};
}

}  // namespace lminf
