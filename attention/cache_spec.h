// The `attention.cache:` section: an evicting KV-cache policy laid over the variant's own cache
// (docs/attention.md, "KV-cache policies"). `policy` picks it (none, h2o, snapkv; a misspelt one gets
// did-you-mean); each policy reads its keys, named as in its reference code (H2O's
// H2OKVCache_LayerWise: hh_size, recent_size; SnapKV's SnapKVCluster: window_size,
// max_capacity_prompt, kernel_size, pooling). A key of another policy is kept as a problem and
// reported with the invalid values before any weight is read (attention/registry.h). The policies
// themselves: framework/transformer/kv_eviction.h; their composition with a variant:
// attention/cache_registry.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/config/spec.h"
#include "framework/transformer/kv_cache.h"

namespace lminf {

std::vector<std::string> cache_policy_names();  // none, h2o, snapkv

struct CacheSpec {
  std::string policy = "none";
  // h2o (the reference's defaults)
  int64_t hh_size = 4;
  int64_t recent_size = 512;
  // snapkv (the reference's defaults, init_snapkv)
  int64_t window_size = 32;
  int64_t max_capacity_prompt = 2048;
  int64_t kernel_size = 5;
  std::string pooling = "avgpool";

  bool evicts() const { return policy != "none"; }
  // The keys policy `name` reads, in visit order (none: no keys).
  static std::vector<std::string> policy_keys(const std::string& name);
  // Keys of another policy found when the section was read, each with file:line and the fix.
  const std::vector<std::string>& ignored_keys() const { return ignored_; }
  // Invalid values of the chosen policy, each naming its key and the fix.
  std::vector<std::string> problems() const;

  template <class V>
  void visit(V& v) {
    v("policy", policy, "KV-cache eviction policy: none (the variant's own cache), h2o, snapkv",
      Choices(cache_policy_names()));
    visit_keys(v);
  }

 private:
  template <class V>
  void keys_of(const std::string& name, V& v) {
    if (name == "h2o") {
      v("hh_size", hh_size, "heavy hitters kept per (sequence, kv head): largest accumulated attention mass", Min{0});
      v("recent_size", recent_size, "most recent tokens kept per (sequence, kv head), the newest included", Min{1});
    } else if (name == "snapkv") {
      v("window_size", window_size, "observation window: the last queries of a prompt that vote for its keys", Min{1});
      v("max_capacity_prompt", max_capacity_prompt,
        "entries kept after a prompt longer than this (the window included)", Min{2});
      v("kernel_size", kernel_size, "width of the pooling of votes along the keys (odd)", Min{1});
      v("pooling", pooling, "pooling of votes along the keys: avgpool or maxpool", Choices{"avgpool", "maxpool"});
    }
  }
  // Reading: every policy's keys; those of another policy than the chosen one are kept as problems.
  void visit_keys(spec_detail::SpecReader& r);
  // Writing: the chosen policy's keys only, so the resolved config.yaml reads back.
  void visit_keys(spec_detail::SpecWriter& w) { keys_of(policy, w); }
  // Help text: each policy's keys under a heading naming it.
  void visit_keys(spec_detail::SpecDescriber& d);
  // Equality, field addresses: every key.
  template <class V>
  void visit_keys(V& v) {
    for (const auto& name : cache_policy_names()) keys_of(name, v);
  }

  std::vector<std::string> ignored_;
};

// The KV-cache policy of a variant whose own policy is `base` (KeepAllPolicy, or HeadTailPolicy
// whose first n_head entries stay protected) under `spec`: base itself when spec.policy is none.
std::shared_ptr<const CachePolicy> make_cache_policy(const CacheSpec& spec, std::shared_ptr<const CachePolicy> base);

// Why `spec` cannot be laid over a variant named `variant` whose own cache policy is `base` (empty:
// it can): the variant must report attention mass, and a windowed variant's cache must hold the
// policy's budget (otherwise the kept heavy hitters fall outside its window and are masked).
std::vector<std::string> cache_composition_problems(const CacheSpec& spec, const std::string& variant,
                                                    bool reports_mass, const CachePolicy& base);

}  // namespace lminf
