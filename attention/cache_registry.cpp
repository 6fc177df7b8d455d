// The KV-cache policies of the `attention.cache:` section: their names, the reading of their keys,
// their values' checks, and their composition with a variant's own cache policy.
#include <algorithm>

#include "attention/cache_spec.h"
#include "attention/registry.h"
#include "framework/core/error.h"
#include "framework/core/format.h"
#include "framework/transformer/kv_eviction.h"

namespace lminf {

std::vector<std::string> cache_policy_names() { return {"none", "h2o", "snapkv"}; }

std::vector<std::string> CacheSpec::policy_keys(const std::string& name) {
  std::vector<std::string> keys;
  auto collect = [&keys](const std::string& key, auto&, const std::string&, const auto&...) { keys.push_back(key); };
  CacheSpec scratch;
  scratch.keys_of(name, collect);
  return keys;
}

namespace {

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The policies that read `key`.
std::string readers_of(const std::string& key) {
  std::vector<std::string> users;
  for (const auto& name : cache_policy_names())
    if (contains(CacheSpec::policy_keys(name), key)) users.push_back(name);
  return join_list(users);
}

}  // namespace

void CacheSpec::visit_keys(spec_detail::SpecReader& r) {
  ignored_.clear();
  for (const auto& name : cache_policy_names()) keys_of(name, r);
  const YAML::Node& node = r.section();
  if (!node.IsMap()) return;
  // The policy as read: when its value was refused (reported with did-you-mean), no key is judged.
  const YAML::Node p = node["policy"];
  if (p && !(p.IsScalar() && p.Scalar() == policy)) return;
  const std::vector<std::string> own = policy_keys(policy);
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node k = it->first;  // a copy: `it->` yields a temporary
    if (!k.IsScalar() || k.Scalar() == "policy" || contains(own, k.Scalar())) continue;
    const std::string path = spec_detail::join_key(r.prefix(), k.Scalar());
    const std::string users = readers_of(k.Scalar());
    if (users.empty()) continue;  // an unknown key: reported by the reader with did-you-mean
    ignored_.push_back(spec_detail::locate(r.source(), path, k.Mark()) + ": " + path + " is not read by " +
                       spec_detail::join_key(r.prefix(), "policy") + ": " + policy + " (read by: " + users +
                       "); remove it or change the policy");
  }
}

void CacheSpec::visit_keys(spec_detail::SpecDescriber& d) {
  for (const auto& name : cache_policy_names()) {
    if (policy_keys(name).empty()) continue;
    d.heading(spec_detail::join_key(d.prefix(), "policy") + ": " + name + " reads");
    keys_of(name, d);
  }
}

std::vector<std::string> CacheSpec::problems() const {
  std::vector<std::string> p;
  if (policy == "snapkv") {
    if (window_size >= max_capacity_prompt)
      p.push_back("attention.cache.window_size=" + std::to_string(window_size) +
                  " must be < attention.cache.max_capacity_prompt=" + std::to_string(max_capacity_prompt) +
                  " (the window is part of the kept prompt; the rest are the voted keys)");
    if (kernel_size % 2 == 0)
      p.push_back("attention.cache.kernel_size=" + std::to_string(kernel_size) +
                  " must be odd (the pooled votes keep the prompt's length); use " + std::to_string(kernel_size + 1));
  }
  return p;
}

namespace {

// The registered variants that report the attention mass an evicting policy needs.
std::vector<std::string> mass_reporting_variants() {
  std::vector<std::string> names;
  for (const auto& v : attention_variants()) {
    AttentionSpec spec;
    spec.variant = v.name;
    if (v.make(spec)->support().key_mass) names.push_back(v.name);
  }
  return names;
}

// What the policy keeps besides the variant's protected first entries.
int64_t budget(const CacheSpec& s) { return s.policy == "h2o" ? s.hh_size + s.recent_size : s.max_capacity_prompt; }

std::string budget_keys(const CacheSpec& s) {
  return s.policy == "h2o" ? "attention.cache.hh_size + recent_size" : "attention.cache.max_capacity_prompt";
}

}  // namespace

std::shared_ptr<const CachePolicy> make_cache_policy(const CacheSpec& spec, std::shared_ptr<const CachePolicy> base) {
  if (!spec.evicts()) return base;
  const auto* head_tail = dynamic_cast<const HeadTailPolicy*>(base.get());
  const int64_t n_head = head_tail ? head_tail->n_head() : 0;
  if (spec.policy == "h2o") return std::make_shared<H2OPolicy>(H2OOptions{spec.hh_size, spec.recent_size, n_head});
  LMINF_CHECK(spec.policy == "snapkv", "attention.cache.policy ", spec.policy, " is not a policy");
  return std::make_shared<SnapKVPolicy>(
      SnapKVOptions{spec.window_size, spec.max_capacity_prompt, spec.kernel_size, spec.pooling == "maxpool", n_head});
}

std::vector<std::string> cache_composition_problems(const CacheSpec& spec, const std::string& variant,
                                                    bool reports_mass, const CachePolicy& base) {
  if (!spec.evicts()) return {};
  const std::string what = "attention.cache.policy: " + spec.policy;
  if (!reports_mass)
    return {what + " needs the attention mass of the keys, which attention.variant " + variant +
            " does not report (it attends some keys apart from the kernels that sum it); use one of " +
            join_list(mass_reporting_variants()) + ", or remove attention.cache"};
  if (dynamic_cast<const KeepAllPolicy*>(&base)) return {};
  const auto* head_tail = dynamic_cast<const HeadTailPolicy*>(&base);
  if (!head_tail)
    return {what + " cannot be laid over attention.variant " + variant + "'s cache policy " + base.name()};
  if (budget(spec) <= head_tail->n_tail()) return {};
  return {budget_keys(spec) + " = " + std::to_string(budget(spec)) + " exceeds the " +
          std::to_string(head_tail->n_tail()) + " entries attention.variant " + variant +
          " keeps after its first " + std::to_string(head_tail->n_head()) +
          ": entries kept further back than its window would be masked after renumbering; lower it to <= " +
          std::to_string(head_tail->n_tail()) + " or widen the variant's window"};
}

}  // namespace lminf
