// The `attention:` section of an experiment: the variant, the tile sizes every variant's kernels
// use, and the chosen variant's own parameters (a struct next to the variant, attention/variants/*.h,
// held type-erased: attention/variant_params.h). Reading the section reads `variant` first (a
// misspelt one gets did-you-mean), then that variant's keys from the same map; any other key is
// unknown (did-you-mean over every variant's keys), each at file:line. A key of another variant is
// kept as a problem, reported by attention/registry.h with the invalid values and the unsupported
// model combinations, all at once, before any weight is read.
//
// Positions and distances are cache indices (spec section 2.11): a bounded cache renumbers the
// entries it keeps, so a query at cache index p and a key at cache index j are d = p - j apart.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include "attention/cache_spec.h"
#include "attention/variant_params.h"
#include "framework/config/spec.h"
#include "framework/core/error.h"

namespace lminf {

std::vector<std::string> attention_variant_names();  // attention/registry.h

struct AttentionSpec {
  std::string variant = "vanilla";
  int64_t block_size = 256;       // query rows per tile of the blockwise kernels
  int64_t key_block_size = 1024;  // key columns per tile (online softmax across tiles)
  CacheSpec cache;                // attention.cache: an evicting KV-cache policy over the variant's cache

  AttentionSpec() = default;
  AttentionSpec(const AttentionSpec& o)
      : variant(o.variant), block_size(o.block_size), key_block_size(o.key_block_size), cache(o.cache),
        params_(o.params_ ? o.params_->clone() : nullptr), ignored_keys_(o.ignored_keys_) {}
  AttentionSpec& operator=(const AttentionSpec& o) {
    AttentionSpec copy(o);
    *this = std::move(copy);
    return *this;
  }
  AttentionSpec(AttentionSpec&&) = default;
  AttentionSpec& operator=(AttentionSpec&&) = default;

  // An attention section from YAML text, e.g. "{variant: lambda, local_branch: 64}" (tests,
  // benchmarks, code that needs a variant of its own). Throws Error as read_spec does.
  static AttentionSpec parse(const std::string& yaml) {
    AttentionSpec s;
    read_spec(YAML::Load(yaml), s, SpecSource{}, "attention");
    return s;
  }

  // The chosen variant's parameters (its defaults when none were read or set). P must be the struct
  // the variant registered; anything else is a bug of the caller.
  template <class P>
  const P& params() const {
    const VariantParams* p = current();
    LMINF_CHECK(p && p->type() == typeid(P), "attention.variant ", variant, " does not take these parameters");
    return *static_cast<const P*>(p->get());
  }
  // The variant's parameters, untyped (null for a variant name that is not registered).
  const VariantParams* variant_params() const { return current(); }
  // L of variants with a local branch (keys nearer than L at their true distance), else nullopt.
  // Keys of other variants found when the section was read ("file:line: attention.top_k=3 is not
  // used by variant lambda (used by: topk); ..."): attention_spec_problems reports them.
  const std::vector<std::string>& ignored_keys() const { return ignored_keys_; }
  std::optional<int64_t> local_window() const {
    const VariantParams* p = current();
    return p ? p->local_window() : std::nullopt;
  }

  template <class V>
  void visit(V& v) {
    v("variant", variant, "attention variant (see `lminf variants`)", Choices(attention_variant_names()));
    v("block_size", block_size, "query rows per tile of the blockwise kernel (memory ~ block_size x key_block_size per head)");
    v("key_block_size", key_block_size,
      "key columns per tile of the blockwise kernel; lambda/streaming compute a query tile's band and starting "
      "columns as one tile when the starting columns fit in key_block_size and the band in 16 x key_block_size");
    v("cache", cache, "KV-cache eviction policy laid over the variant's own cache (docs/attention.md: KV-cache policies)");
    visit_params(v);
  }

 private:
  // Reading: the variant's parameters from the same map, the other variants' keys reported (registry.cpp).
  void visit_params(spec_detail::SpecReader& r);
  // Help text: every variant's keys under a heading naming it (registry.cpp).
  void visit_params(spec_detail::SpecDescriber& d);
  // Writing, equality: the chosen variant's keys.
  template <class V>
  void visit_params(V& v) {
    if (VariantParams* p = current()) p->visit(v);
  }
  // params_, replaced by the variant's defaults when it holds another variant's struct (or none):
  // a spec whose variant was set in code reads as that variant with its defaults (registry.cpp).
  VariantParams* current() const;

  mutable std::unique_ptr<VariantParams> params_;
  std::vector<std::string> ignored_keys_;
};

}  // namespace lminf
