// The MPT family (model_type mpt, MosaicML): ALiBi attention biases (no rotary), LayerNorm (no bias
// when no_bias), a fused Wqkv projection (optionally clamped to +-clip_qkv), exact-GELU MLP, head
// tied to the embedding. Tensor-parallel like Llama: Wqkv's q, k and v row blocks sliced per head
// group on load (column-parallel), out_proj and down_proj row-parallel, the vocabulary split. This
// file is all the family knows: its config.json keys (HF MptConfig / llm-foundry), its tensors, its
// model and its record.
#include <cmath>

#include "framework/core/error.h"
#include "framework/transformer/alibi.h"
#include "framework/transformer/config_json.h"
#include "models/families/families.h"
#include "models/families/family_common.h"
#include "parallel/parallel_layers.h"

namespace lminf {
namespace {
using nlohmann::json;

// ---- config.json: the HF MptConfig keys -------------------------------------------------------

// attn_config: ALiBi (required), its bias maximum, clip_qkv; the options of other MPT attentions refused.
void read_attn_config(const json& j, const std::string& where, ModelConfig& c) {
  const json a = j.contains("attn_config") && j["attn_config"].is_object() ? j["attn_config"] : json::object();
  c.alibi = get_or<bool>(a, "alibi", false, where);
  if (!c.alibi)
    fail(where, ": attn_config.alibi=false (learned position embeddings) is not supported; lminf runs ALiBi MPT models");
  c.alibi_bias_max = get_or<double>(a, "alibi_bias_max", 8.0, where);
  if (a.contains("clip_qkv") && !a["clip_qkv"].is_null()) c.clip_qkv = get_or<double>(a, "clip_qkv", 0.0, where);
  reject_unless<bool>(a, "qk_ln", false, where, "attn_config.", "LayerNorm on q and k");
  reject_unless<bool>(a, "prefix_lm", false, where, "attn_config.", "prefix-LM masks");
  reject_unless<bool>(a, "rope", false, where, "attn_config.", "rotary MPT");
  reject_unless<bool>(a, "qk_gn", false, where, "attn_config.", "GroupNorm on q and k");
  reject_unless<int64_t>(a, "sliding_window_size", -1, where, "attn_config.", "sliding-window MPT");
  reject_unless<std::string>(a, "attn_type", "multihead_attention", where, "attn_config.",
                             "supported: multihead_attention");
  auto ss = a.find("softmax_scale");
  if (ss != a.end() && !ss->is_null())
    fail(where, ": attn_config.softmax_scale=", ss->dump(), " is not supported (null: 1/sqrt(head_dim))");
  auto impl = a.find("attn_impl");
  if (impl != a.end() && !impl->is_null()) {
    const std::string v = impl->is_string() ? impl->get<std::string>() : impl->dump();
    if (v != "torch" && v != "flash" && v != "triton")
      fail(where, ": attn_config.attn_impl=", impl->dump(), " is not supported (torch, flash, triton: the same math)");
  }
}

const MhaKeys kMptSizes{"d_model", "n_heads", "n_layers", "max_seq_len"};
// The keys that are one ModelConfig member each (absent: ModelConfig's defaults, no_bias true).
const std::vector<ConfigKey> kMptOptions = {
    {"no_bias", &ModelConfig::no_bias},
    {"layer_norm_epsilon", &ModelConfig::layer_norm_eps},
};

ModelConfig mpt_from_json(const json& j, const std::string& where) {
  ModelConfig c;
  read_mha_sizes(j, kMptSizes, where, c);
  const double ratio = get_or<double>(j, "expansion_ratio", 4.0, where);
  const double inter = ratio * static_cast<double>(c.hidden_size);
  if (ratio <= 0 || inter != std::floor(inter) || inter > static_cast<double>(kMaxIntermediateSize))
    fail(where, ": expansion_ratio (", ratio, ") times d_model (", c.hidden_size, ") must be a positive integer of at most ", kMaxIntermediateSize);
  c.intermediate_size = static_cast<int64_t>(inter);
  read_keys(j, kMptOptions, where, c);
  c.tie_word_embeddings = true;
  reject_unless<bool>(j, "tie_word_embeddings", true, where, "", "MPT ties its head to transformer.wte");
  const std::string norm = get_or<std::string>(j, "norm_type", "low_precision_layernorm", where);
  if (norm != "low_precision_layernorm" && norm != "layernorm")
    fail(where, ": norm_type=\"", norm, "\" is not supported (supported: low_precision_layernorm, layernorm)");
  auto lit = j.find("logit_scale");
  if (lit != j.end() && !lit->is_null()) fail(where, ": logit_scale=", lit->dump(), " is not supported (use null)");
  c.hidden_act = "gelu";
  if (j.contains("ffn_config") && j["ffn_config"].is_object()) {
    const json& f = j["ffn_config"];
    reject_unless<std::string>(f, "ffn_type", "mptmlp", where, "ffn_config.", "supported: mptmlp");
    if (f.contains("ffn_act_fn") && !f["ffn_act_fn"].is_null())
      fail(where, ": ffn_config.ffn_act_fn=", f["ffn_act_fn"].dump(), " is not supported (exact GELU only)");
  }
  read_attn_config(j, where, c);
  return c;
}

json mpt_to_json(const ModelConfig& c) {
  json j = mha_config_json(c, "MPTForCausalLM", kMptSizes, kMptOptions);
  j["expansion_ratio"] = c.intermediate_size % c.hidden_size == 0 ? json(c.intermediate_size / c.hidden_size)
                                                               : json(double(c.intermediate_size) / double(c.hidden_size));
  j["norm_type"] = "low_precision_layernorm";
  j["learned_pos_emb"] = true;
  j["logit_scale"] = nullptr;
  j["attn_config"] = {{"alibi", c.alibi},      {"alibi_bias_max", c.alibi_bias_max},
                      {"attn_impl", "torch"}, {"clip_qkv", c.clip_qkv ? json(*c.clip_qkv) : json(nullptr)},
                      {"qk_ln", false},       {"prefix_lm", false},
                      {"softmax_scale", nullptr}, {"attn_type", "multihead_attention"}};
  return j;
}

void mpt_validate(const ModelConfig& c, const std::string& where) {
  if (!c.alibi) fail(where, ": attn_config.alibi must be true (lminf runs ALiBi MPT models)");
  if (c.alibi_bias_max <= 0) fail(where, ": attn_config.alibi_bias_max must be > 0, got ", c.alibi_bias_max);
  if (c.clip_qkv && *c.clip_qkv <= 0) fail(where, ": attn_config.clip_qkv must be > 0 or null, got ", *c.clip_qkv);
  if (c.hidden_act != "gelu") fail(where, ": MPT's MLP is exact GELU, got \"", c.hidden_act, "\"");
  if (c.layer_norm_eps <= 0) fail(where, ": layer_norm_epsilon must be > 0");
}

// ALiBi (alibi_bias_max 8), exact GELU, the head tied to the embedding.
ModelConfig mpt_preset(ModelConfig sized) {
  ModelConfig c = layer_norm_preset(std::move(sized), "mpt");
  c.tie_word_embeddings = true;
  c.alibi = true;
  c.alibi_bias_max = 8.0;
  c.hidden_act = "gelu";
  return c;
}

// ---- weights and model ----------------------------------------------------------------------

struct MptLayer {
  at::Tensor norm_1_w, norm_1_b;  // [hidden]; bias undefined when no_bias
  at::Tensor wqkv;                // [3 * H_local * D, hidden]: this rank's q, k, v rows (column-parallel)
  at::Tensor bqkv;                // [3 * H_local * D] or undefined
  at::Tensor wo;                  // [hidden, H_local * D] (row-parallel)
  at::Tensor bo;                  // [hidden] or undefined
  at::Tensor norm_2_w, norm_2_b;  // [hidden]
  at::Tensor w_up, b_up;          // [I_local, hidden], [I_local] (column-parallel)
  at::Tensor w_down, b_down;      // [hidden, I_local], [hidden] (row-parallel)
};

struct MptWeights {
  at::Tensor wte;                 // [V_local, hidden] (vocab-parallel; also the head)
  at::Tensor norm_f_w, norm_f_b;  // [hidden]
  std::vector<MptLayer> layers;
};

// Every tensor of an MPT checkpoint (the HF names, spelled only here), bound to `w`; biases only
// when !no_bias.
std::vector<WeightSpec> mpt_layout(const ModelConfig& c, MptWeights& w) {
  const int64_t h = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const bool bias = !c.no_bias;
  std::vector<WeightSpec> t;
  // Wqkv rows are [q (h) | k (h) | v (h)]: this rank's heads are the same row range in each block.
  auto qkv = [](WeightSpec s) {
    s.blocks = 3;
    return s;
  };
  t.push_back(rows("transformer.wte.weight", {V, h}, Init::kEmbedding, Part::kVocab, w.wte));
  for_each_layer(w.layers, c.n_layer, "transformer.blocks.", [&](const std::string& p, MptLayer& L) {
    t.push_back(whole(p + "norm_1.weight", {h}, Init::kNorm, L.norm_1_w));
    if (bias) t.push_back(whole(p + "norm_1.bias", {h}, Init::kBias, L.norm_1_b));
    t.push_back(qkv(rows(p + "attn.Wqkv.weight", {3 * h, h}, Init::kLinear, Part::kQHeads, L.wqkv)));
    if (bias) t.push_back(qkv(rows(p + "attn.Wqkv.bias", {3 * h}, Init::kBias, Part::kQHeads, L.bqkv)));
    t.push_back(cols(p + "attn.out_proj.weight", {h, h}, Init::kOutput, Part::kQHeads, L.wo));
    if (bias) t.push_back(whole(p + "attn.out_proj.bias", {h}, Init::kBias, L.bo));
    t.push_back(whole(p + "norm_2.weight", {h}, Init::kNorm, L.norm_2_w));
    if (bias) t.push_back(whole(p + "norm_2.bias", {h}, Init::kBias, L.norm_2_b));
    t.push_back(rows(p + "ffn.up_proj.weight", {I, h}, Init::kLinear, Part::kFfn, L.w_up));
    if (bias) t.push_back(rows(p + "ffn.up_proj.bias", {I}, Init::kBias, Part::kFfn, L.b_up));
    t.push_back(cols(p + "ffn.down_proj.weight", {h, I}, Init::kOutput, Part::kFfn, L.w_down));
    if (bias) t.push_back(whole(p + "ffn.down_proj.bias", {h}, Init::kBias, L.b_down));
  });
  t.push_back(whole("transformer.norm_f.weight", {h}, Init::kNorm, w.norm_f_w));
  if (bias) t.push_back(whole("transformer.norm_f.bias", {h}, Init::kBias, w.norm_f_b));
  return t;
}

class MptModel final : public FamilyModel {
 public:
  MptModel(Checkpoint& ckpt, const ModelConfig& config, const LoadOptions& opts)
      : FamilyModel(config, opts, /*n_head_kv=*/config.n_head) {
    slopes_ = alibi_slopes(config.n_head, config.alibi_bias_max)
                  .narrow(0, heads_.q.start, heads_.q.length)
                  .contiguous()
                  .to(opts.device);
    if (ckpt.has("transformer.wpe.weight"))
      fail(ckpt.dir().string(), ": transformer.wpe.weight (learned position embeddings) is not supported; ",
           "lminf runs ALiBi MPT models");
    load_weights(ckpt, opts, mpt_layout(config, w_));
    head_w_ = w_.wte;  // tied
  }

  at::Tensor forward(const at::Tensor& ids, KVCache* cache, const ForwardContext& ctx) override;

 private:
  at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const;

  at::Tensor slopes_;  // [H_local] float32 ALiBi slopes of this rank's heads
  MptWeights w_;
};

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

  at::Tensor x = vocab_parallel_embedding(ids.to(w_.wte.device()), w_.wte, vocab_.start, *tp_);  // [B, T, hidden]
  for (int64_t l = 0; l < config_.n_layer; ++l) {
    const MptLayer& L = w_.layers[static_cast<size_t>(l)];
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
  return layer_norm(x, w_.norm_f_w, w_.norm_f_b);
}

}  // namespace

ModelFamily mpt_family() {
  return {"mpt", {"mpt"}, mpt_from_json, mpt_to_json, mpt_validate,
          unbound_weights<MptWeights, mpt_layout>, load_as<MptModel>, mpt_preset};
}

}  // namespace lminf
