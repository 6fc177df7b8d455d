#include "attention/registry.h"

#include <algorithm>
#include <cmath>

#include "attention/variants/distance_limit.h"
#include "attention/variants/lambda.h"
#include "attention/variants/streaming.h"
#include "attention/variants/top_k.h"
#include "attention/variants/vanilla.h"
#include "framework/core/error.h"
#include "framework/config/spec.h"

namespace lminf {

const std::vector<VariantInfo>& attention_variants() {
  static const std::vector<VariantInfo> variants = {
      {"vanilla",
       "causal attention over every earlier token at its true distance (the model as trained)",
       [](const AttentionSpec& s) { return std::make_unique<VanillaAttention>(s); },
       {}},
      {"lambda",
       "LM-Infinite: keys at distance < L at their true distance, the first G tokens beyond at distance D, the "
       "middle masked; bounded cache (first G + last L)",
       [](const AttentionSpec& s) { return std::make_unique<LambdaAttention>(s); },
       {"local_branch", "global_branch", "limit_distance"}},
      {"topk",
       "lambda, plus the top_k best middle keys per head on the last query row of each call, seen at distance "
       "top_k_insert_at, in layers [top_k_from_layer, top_k_to_layer); full cache",
       [](const AttentionSpec& s) { return std::make_unique<TopKAttention>(s); },
       {"local_branch", "global_branch", "limit_distance", "top_k", "top_k_from_layer", "top_k_to_layer",
        "top_k_insert_at"}},
      {"streaming",
       "StreamingLLM: start_size attention sinks + a recent window of recent_size, positions re-indexed inside "
       "the cache; bounded cache",
       [](const AttentionSpec& s) { return std::make_unique<StreamingAttention>(s); },
       {"start_size", "recent_size"}},
      {"distance_limit",
       "ablation: every earlier token visible at distance min(d, D); optional triangle_offset on the middle "
       "(j >= G, d >= L); full cache",
       [](const AttentionSpec& s) { return std::make_unique<DistanceLimitAttention>(s); },
       {"local_branch", "global_branch", "limit_distance", "triangle_offset"}},
  };
  return variants;
}

std::vector<std::string> attention_variant_names() {
  std::vector<std::string> names;
  for (const auto& v : attention_variants()) names.push_back(v.name);
  return names;
}

namespace {
const VariantInfo* find_variant(const std::string& name) {
  for (const auto& v : attention_variants())
    if (v.name == name) return &v;
  return nullptr;
}
std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// The keys of `spec` whose values differ from AttentionSpec's defaults, with their YAML text.
class ChangedKeys {
 public:
  explicit ChangedKeys(const std::vector<const void*>& defaults) : defaults_(defaults) {}
  template <class M, class... Opts>
  void operator()(const std::string& key, M& member, const std::string&, const Opts&...) {
    const M& d = *static_cast<const M*>(defaults_[next_++]);
    if (!spec_detail::leaf_equal(member, d))
      changed.emplace_back(key, to_yaml_string(spec_detail::write_value(member)));
  }
  std::vector<std::pair<std::string, std::string>> changed;

 private:
  const std::vector<const void*>& defaults_;
  std::size_t next_ = 0;
};

std::vector<std::pair<std::string, std::string>> changed_keys(const AttentionSpec& spec) {
  AttentionSpec defaults;
  std::vector<const void*> addresses;
  spec_detail::FieldAddresses collect(addresses);
  defaults.visit(collect);
  ChangedKeys changed(addresses);
  spec_detail::visit_const(spec, changed);
  return changed.changed;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool uses(const VariantInfo& info, const std::string& key) {
  return std::find(info.parameters.begin(), info.parameters.end(), key) != info.parameters.end();
}

// The variants that read `key`.
std::string users_of(const std::string& key) {
  std::vector<std::string> users;
  for (const auto& v : attention_variants())
    if (uses(v, key)) users.push_back(v.name);
  return joined(users);
}

}  // namespace

std::vector<std::string> attention_spec_problems(const AttentionSpec& spec) {
  std::vector<std::string> problems;
  const VariantInfo* info = find_variant(spec.variant);
  if (!info) {
    problems.push_back("attention.variant: \"" + spec.variant +
                       "\" is not a variant (available: " + joined(attention_variant_names()) + ")");
    return problems;
  }
  if (spec.block_size <= 0) problems.push_back("attention.block_size must be > 0");
  if (spec.key_block_size <= 0) problems.push_back("attention.key_block_size must be > 0");
  const std::string& name = spec.variant;
  for (const auto& [key, value] : changed_keys(spec)) {
    if (key == "variant" || key == "block_size" || key == "key_block_size" || uses(*info, key)) continue;
    problems.push_back("attention." + key + "=" + trimmed(value) + " is not used by variant " + name +
                       " (used by: " + users_of(key) + "); remove it or change attention.variant");
  }
  auto key_value = [](const std::string& key, int64_t v) { return "attention." + key + "=" + std::to_string(v); };
  if (uses(*info, "local_branch") && spec.local_branch <= 0) {
    problems.push_back(key_value("local_branch", spec.local_branch) +
                       " must be > 0 (use attention.variant: vanilla to disable the window)");
  }
  if (uses(*info, "global_branch") && spec.global_branch < 0) {
    problems.push_back(key_value("global_branch", spec.global_branch) +
                       " must be >= 0 (0: no starting tokens, a plain sliding window)");
  }
  if (uses(*info, "limit_distance") && spec.limit_distance && *spec.limit_distance < 0) {
    problems.push_back(key_value("limit_distance", *spec.limit_distance) +
                       " must be > 0 (0 or absent: local_branch; null: no distance ceiling)");
  }
  if (uses(*info, "top_k")) {
    if (spec.top_k <= 0)
      problems.push_back(key_value("top_k", spec.top_k) +
                         " must be > 0 (use attention.variant: lambda for no retrieval)");
    if (spec.top_k_from_layer < 0)
      problems.push_back(key_value("top_k_from_layer", spec.top_k_from_layer) + " must be >= 0");
    if (spec.top_k_to_layer <= spec.top_k_from_layer)
      problems.push_back(key_value("top_k_to_layer", spec.top_k_to_layer) + " must be > attention.top_k_from_layer (" +
                         std::to_string(spec.top_k_from_layer) + "): no layer would retrieve");
    if (spec.top_k_insert_at < 0)
      problems.push_back(key_value("top_k_insert_at", spec.top_k_insert_at) + " must be >= 0");
  }
  if (uses(*info, "start_size") && spec.start_size < 0)
    problems.push_back(key_value("start_size", spec.start_size) + " must be >= 0 (0: a plain sliding window)");
  if (uses(*info, "recent_size") && spec.recent_size <= 0)
    problems.push_back(key_value("recent_size", spec.recent_size) + " must be > 0 (the window includes the query)");
  if (uses(*info, "triangle_offset") && !std::isfinite(spec.triangle_offset))
    problems.push_back("attention.triangle_offset must be a finite number");
  return problems;
}

std::vector<std::string> attention_problems(const AttentionSpec& spec, const ModelConfig& model, int tensor_parallel) {
  std::vector<std::string> problems = attention_spec_problems(spec);
  const VariantInfo* info = find_variant(spec.variant);
  if (!info || !problems.empty()) return problems;  // the variant cannot be built from invalid values
  auto variant = info->make(spec);
  VariantSupport sup = variant->support();
  if (!sup.model_types.empty() &&
      std::find(sup.model_types.begin(), sup.model_types.end(), model.model_type) == sup.model_types.end()) {
    problems.push_back("attention.variant " + spec.variant + " does not support model_type " + model.model_type +
                       " (supported: " + joined(sup.model_types) + ")");
  }
  if (!sup.gqa && model.n_head_kv != model.n_head) {
    problems.push_back("attention.variant " + spec.variant + " does not support grouped-query attention");
  }
  if (!sup.tensor_parallel && tensor_parallel > 1) {
    problems.push_back("attention.variant " + spec.variant + " does not support tensor parallelism");
  }
  // A sliding-window model (Mistral) never saw distances >= its window: a wider band is out of range.
  if (model.sliding_window) {
    const int64_t w = *model.sliding_window;
    auto check_band = [&](const std::string& key, int64_t band) {
      if (band > w)
        problems.push_back("attention." + key + "=" + std::to_string(band) + " exceeds the model's sliding_window (" +
                           std::to_string(w) + ", config.json); set it <= " + std::to_string(w));
    };
    if (spec.variant == "lambda" || spec.variant == "topk") check_band("local_branch", spec.local_branch);
    if (spec.variant == "streaming") check_band("recent_size", spec.recent_size);
    if (spec.variant == "distance_limit" && spec.limit()) check_band("limit_distance", *spec.limit());
    if (spec.variant == "distance_limit" && !spec.limit())
      problems.push_back(
          "attention.limit_distance: null keeps every key at its true distance, beyond the model's "
          "sliding_window (" +
          std::to_string(w) + "); set a limit <= " + std::to_string(w));
  }
  if (spec.variant == "topk" && spec.top_k_from_layer >= model.n_layer) {
    problems.push_back("attention.top_k_from_layer=" + std::to_string(spec.top_k_from_layer) + " but the model has " +
                       std::to_string(model.n_layer) +
                       " layers: no layer would retrieve (lower it or use variant lambda)");
  }
  return problems;
}

std::unique_ptr<AttentionVariant> make_attention(const AttentionSpec& spec) {
  std::vector<std::string> problems = attention_spec_problems(spec);
  if (!problems.empty()) {
    std::string msg = "the attention section is invalid:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(msg);
  }
  return find_variant(spec.variant)->make(spec);
}

}  // namespace lminf
