// The one list of attention variants, the generic checks every variant shares, and the reading of
// the `attention:` section's variant-dependent keys (AttentionSpec::visit_params).
#include "attention/registry.h"

#include <algorithm>

#include "attention/variants/dca.h"
#include "attention/variants/distance_limit.h"
#include "attention/variants/infllm.h"
#include "attention/variants/lambda.h"
#include "attention/variants/rerope.h"
#include "attention/variants/self_extend.h"
#include "attention/variants/streaming.h"
#include "attention/variants/top_k.h"
#include "attention/variants/vanilla.h"
#include "framework/config/spec.h"
#include "framework/core/error.h"
#include "framework/transformer/model_config.h"
#include "framework/core/format.h"

namespace lminf {
namespace {

// One registry entry: Variant is built from its Params struct and the spec's tile sizes.
template <class Variant, class Params>
VariantInfo entry(std::string name, std::string summary, std::vector<std::string> test_sections) {
  return VariantInfo{std::move(name), std::move(summary), [] { return std::make_unique<ParamsOf<Params>>(); },
                     [](const AttentionSpec& s) {
                       return std::make_unique<Variant>(s.params<Params>(),
                                                        BlockwiseOptions{s.block_size, s.key_block_size});
                     },
                     std::move(test_sections)};
}

}  // namespace

const std::vector<VariantInfo>& attention_variants() {
  static const std::vector<VariantInfo> variants = {
      entry<VanillaAttention, VanillaParams>(
          "vanilla", "causal attention over every earlier token at its true distance (the model as trained)",
          {"{block_size: 7, key_block_size: 11}"}),
      entry<LambdaAttention, LambdaParams>(
          "lambda",
          "LM-Infinite: keys at distance < L at their true distance, the first G tokens beyond at distance D, the "
          "middle masked; bounded cache (first G + last L)",
          {"{local_branch: 12, global_branch: 3, block_size: 5, key_block_size: 7}",
           "{local_branch: 9, global_branch: 2, limit_distance: null}"}),
      entry<TopKAttention, TopKParams>(
          "topk",
          "lambda, plus the top_k best middle keys per head on the last query row of each call, seen at distance "
          "top_k_insert_at, in layers [top_k_from_layer, top_k_to_layer); full cache",
          {"{local_branch: 8, global_branch: 2, top_k: 3, top_k_from_layer: 1, top_k_insert_at: 11}"}),
      entry<StreamingAttention, StreamingParams>(
          "streaming",
          "StreamingLLM: start_size attention sinks + a recent window of recent_size, positions re-indexed inside "
          "the cache; bounded cache",
          {"{start_size: 3, recent_size: 10, block_size: 8}"}),
      entry<DistanceLimitAttention, DistanceLimitParams>(
          "distance_limit",
          "ablation: every earlier token visible at distance min(d, D); optional triangle_offset on the middle "
          "(j >= G, d >= L); full cache",
          {"{limit_distance: 8, triangle_offset: 0.3, local_branch: 8, global_branch: 2}"}),
      // Windows, groups and chunks below, at and just past the test lengths (23, 37, 41 tokens).
      entry<SelfExtendAttention, SelfExtendParams>(
          "self_extend",
          "Self-Extend: keys at d < neighbor_window at their true distance, the rest at grouped positions "
          "(query p/G + W - W/G, key j/G); full cache",
          {"{group_size: 3, neighbor_window: 8, block_size: 5, key_block_size: 7}",
           "{group_size: 4, neighbor_window: 22, block_size: 6, key_block_size: 4}",
           "{group_size: 5, neighbor_window: 23}"}),
      entry<ReropeAttention, ReropeParams>(
          "rerope",
          "ReRoPE: keys at d < window at their true distance, the rest at window (Leaky: window + (d - window)/k); "
          "optional log-length query scaling; full cache",
          {"{window: 8}", "{window: 6, leaky_k: 2.5, log_scale_base: 16, block_size: 5, key_block_size: 7}",
           "{window: 22, leaky_k: 4, block_size: 8}"}),
      entry<DcaAttention, DcaParams>(
          "dca",
          "dual chunk attention (ChunkLlama): intra-chunk, successive-chunk and inter-chunk position views "
          "merged by log-sum-exp, distances <= chunk_size; full cache",
          {"{chunk_size: 10, local_window: 3, block_size: 4, key_block_size: 5}",
           "{chunk_size: 13, local_window: 9, block_size: 3}", "{chunk_size: 26, local_window: 3}",
           "{chunk_size: 12, local_window: 0, key_block_size: 5}"}),
      entry<InfLLMAttention, InfLLMParams>(
          "infllm",
          "InfLLM: n_init sinks + a local window of n_local + per chunk of exc_block_size queries the topk memory "
          "blocks of the evicted middle, memory keys at distance n_local - 1; full cache (memory grows)",
          {"{n_local: 6, n_init: 2, memory_block_size: 3, topk: 2, repr_topk: 2, exc_block_size: 4, block_size: 5, "
           "key_block_size: 7}",
           "{n_local: 5, n_init: 0, memory_block_size: 4, topk: 3, repr_topk: 4, exc_block_size: 5, perhead: true}",
           "{n_local: 7, n_init: 3, memory_block_size: 2, topk: 1, repr_topk: 2, exc_block_size: 1, perhead: true}"}),
  };
  return variants;
}

std::vector<std::string> attention_variant_names() {
  std::vector<std::string> names;
  for (const auto& v : attention_variants()) names.push_back(v.name);
  return names;
}

const VariantInfo* find_attention_variant(const std::string& name) {
  for (const auto& v : attention_variants())
    if (v.name == name) return &v;
  return nullptr;
}

std::vector<std::string> attention_variant_keys(const VariantInfo& info) { return info.params()->keys(); }

std::vector<std::string> attention_test_sections() {
  std::vector<std::string> out;
  for (const auto& v : attention_variants()) {
    for (const auto& section : v.test_sections) {
      YAML::Node n(YAML::NodeType::Map);
      n["variant"] = v.name;
      for (const auto& kv : YAML::Load(section)) n[kv.first.Scalar()] = kv.second;
      YAML::Emitter e;
      e << YAML::Flow << n;
      out.push_back(e.c_str());
    }
  }
  return out;
}

namespace {

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Every variant's keys, each once, in registry order.
std::vector<std::string> all_variant_keys() {
  std::vector<std::string> keys;
  for (const auto& v : attention_variants())
    for (const auto& k : attention_variant_keys(v))
      if (!contains(keys, k)) keys.push_back(k);
  return keys;
}

// The variants that read `key`.
std::string users_of(const std::string& key) {
  std::vector<std::string> users;
  for (const auto& v : attention_variants())
    if (contains(attention_variant_keys(v), key)) users.push_back(v.name);
  return join_list(users);
}

std::string value_text(const YAML::Node& n) {
  if (n.IsNull()) return "null";
  std::string s = n.IsScalar() ? n.Scalar() : to_yaml_string(n);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

VariantParams* AttentionSpec::current() const {
  const VariantInfo* info = find_attention_variant(variant);
  if (!info) return nullptr;
  std::unique_ptr<VariantParams> defaults = info->params();
  if (!params_ || params_->type() != defaults->type()) params_ = std::move(defaults);
  return params_.get();
}

void AttentionSpec::visit_params(spec_detail::SpecReader& r) {
  ignored_keys_.clear();
  const YAML::Node& node = r.section();
  // The variant as read: when its value was refused (reported with did-you-mean), no key can be
  // judged against it; they are only checked for being some variant's key.
  bool known = find_attention_variant(variant) != nullptr;
  if (node.IsMap()) {
    const YAML::Node v = node["variant"];
    if (v && !(v.IsScalar() && v.Scalar() == variant)) known = false;
  }
  std::vector<std::string> own;
  if (known) {
    VariantParams* p = current();
    p->visit(r);
    own = p->keys();
  }
  const std::vector<std::string> all = all_variant_keys();
  for (const auto& key : all)
    if (!contains(own, key)) r.claim_key(key);  // valid in this section, and a candidate for did-you-mean
  if (!known || !node.IsMap()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node k = it->first;  // a copy: `it->` yields a temporary
    if (!k.IsScalar() || contains(own, k.Scalar()) || !contains(all, k.Scalar())) continue;
    // Kept for attention_spec_problems, which reports it with the invalid values: all at once.
    const std::string path = spec_detail::join_key(r.prefix(), k.Scalar());
    ignored_keys_.push_back(spec_detail::locate(r.source(), path, k.Mark()) + ": " + path + "=" +
                            value_text(it->second) + " is not used by variant " + variant + " (used by: " +
                            users_of(k.Scalar()) + "); remove it or change " +
                            spec_detail::join_key(r.prefix(), "variant"));
  }
}

void AttentionSpec::visit_params(spec_detail::SpecDescriber& d) {
  for (const auto& v : attention_variants()) {
    std::unique_ptr<VariantParams> p = v.params();
    if (p->keys().empty()) continue;
    d.heading(spec_detail::join_key(d.prefix(), "variant") + ": " + v.name + " reads");
    p->visit(d);
  }
}

namespace {

// A variant whose KV cache is managed by an evicting policy (attention.cache) laid over its own:
// everything else is the variant's.
class EvictingAttention final : public AttentionVariant {
 public:
  EvictingAttention(std::unique_ptr<AttentionVariant> inner, const CacheSpec& cache)
      : inner_(std::move(inner)), policy_(make_cache_policy(cache, inner_->cache_policy())) {}
  std::string name() const override { return inner_->name(); }
  VariantSupport support() const override { return inner_->support(); }
  std::vector<std::string> model_problems(const ModelConfig& model, int tensor_parallel) const override {
    return inner_->model_problems(model, tensor_parallel);
  }
  at::Tensor forward(const AttentionCall& call) const override { return inner_->forward(call); }
  std::shared_ptr<const CachePolicy> cache_policy() const override { return policy_; }

 private:
  std::unique_ptr<AttentionVariant> inner_;
  std::shared_ptr<const CachePolicy> policy_;
};

}  // namespace

bool has_relative_positions(const ModelConfig& model) { return model.alibi || model.rotary_dims() > 0; }

namespace {

// Every integer of the attention section is a size, a distance or a count of tokens, so none may
// exceed the longest sequence a model can be given (kMaxPositions): sums of them then cannot overflow
// and no tile or window is sized past what a run can use.
void check_integers(const YAML::Node& n, const std::string& path, std::vector<std::string>& problems) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) check_integers(it->second, path + "." + it->first.Scalar(), problems);
    return;
  }
  int64_t v = 0;
  if (!n.IsScalar() || n.Tag() == "!" || !YAML::convert<int64_t>::decode(n, v)) return;
  if (v > kMaxPositions)
    problems.push_back(path + "=" + std::to_string(v) + " must be at most " + std::to_string(kMaxPositions) +
                       " (a size or distance in tokens; no sequence is longer)");
}

}  // namespace

std::vector<std::string> attention_spec_problems(const AttentionSpec& spec) {
  std::vector<std::string> problems;
  if (find_attention_variant(spec.variant)) check_integers(write_spec(spec), "attention", problems);
  if (!find_attention_variant(spec.variant)) {
    problems.push_back("attention.variant: \"" + spec.variant +
                       "\" is not a variant (available: " + join_list(attention_variant_names()) + ")");
    return problems;
  }
  if (spec.block_size <= 0) problems.push_back("attention.block_size must be > 0");
  if (spec.key_block_size <= 0) problems.push_back("attention.key_block_size must be > 0");
  for (const auto& p : spec.ignored_keys()) problems.push_back(p);
  for (auto& p : spec.variant_params()->problems()) problems.push_back(std::move(p));
  for (const auto& p : spec.cache.ignored_keys()) problems.push_back(p);
  for (auto& p : spec.cache.problems()) problems.push_back(std::move(p));
  if (problems.empty()) {  // the variant can be built: check the policy against its cache
    auto variant = find_attention_variant(spec.variant)->make(spec);
    for (auto& p : cache_composition_problems(spec.cache, spec.variant, variant->support().key_mass,
                                              *variant->cache_policy()))
      problems.push_back(std::move(p));
  }
  return problems;
}

std::vector<std::string> attention_problems(const AttentionSpec& spec, const ModelConfig& model, int tensor_parallel) {
  std::vector<std::string> problems = attention_spec_problems(spec);
  if (!problems.empty()) return problems;  // the variant cannot be built from invalid values
  auto variant = find_attention_variant(spec.variant)->make(spec);
  const VariantSupport sup = variant->support();
  const std::string name = "attention.variant " + spec.variant;
  if (sup.needs_relative_positions && !has_relative_positions(model))
    problems.push_back(name + " needs rotary embeddings or ALiBi biases, which model_type " + model.model_type +
                       " does not have");
  if (!sup.gqa && model.n_head_kv != model.n_head)
    problems.push_back(name + " does not support grouped-query attention");
  if (!sup.tensor_parallel && tensor_parallel > 1) problems.push_back(name + " does not support tensor parallelism");
  for (auto& p : variant->model_problems(model, tensor_parallel)) problems.push_back(std::move(p));
  if (spec.cache.evicts() && tensor_parallel > model.n_head_kv)
    problems.push_back("attention.cache.policy " + spec.cache.policy + " does not support tensor_parallel=" +
                       std::to_string(tensor_parallel) + " > num_key_value_heads=" + std::to_string(model.n_head_kv) +
                       ": a replicated kv head's query heads would vote on different ranks and keep different "
                       "entries; use tensor_parallel <= " + std::to_string(model.n_head_kv));
  return problems;
}

std::unique_ptr<AttentionVariant> make_attention(const AttentionSpec& spec) {
  std::vector<std::string> problems = attention_spec_problems(spec);
  if (!problems.empty()) {
    std::string msg = "the attention section is invalid:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(msg);
  }
  std::unique_ptr<AttentionVariant> variant = find_attention_variant(spec.variant)->make(spec);
  if (!spec.cache.evicts()) return variant;
  return std::make_unique<EvictingAttention>(std::move(variant), spec.cache);
}

}  // namespace lminf
