#include "attention/reference/variant_rules.h"

#include <utility>

#include "attention/variants/dca.h"
#include "attention/variants/distance_limit.h"
#include "attention/variants/infllm.h"
#include "attention/variants/lambda.h"
#include "attention/variants/rerope.h"
#include "attention/variants/self_extend.h"
#include "attention/variants/streaming.h"
#include "attention/variants/top_k.h"

namespace lminf {
namespace {

int64_t queries(const RuleCall& c) { return c.q.size(2); }
int64_t keys(const RuleCall& c) { return c.k.size(2); }

AttentionRule lambda_of(const LambdaParams& p, const RuleCall& c) {
  return lambda_rule(queries(c), keys(c), c.q_offset, p.local_branch, p.global_branch, p.limit());
}

const std::vector<std::pair<std::string, VariantRule>>& rules() {
  static const std::vector<std::pair<std::string, VariantRule>> table = {
      {"vanilla",
       [](const AttentionSpec&, const RuleCall& c) { return vanilla_rule(queries(c), keys(c), c.q_offset); }},
      {"lambda", [](const AttentionSpec& s, const RuleCall& c) { return lambda_of(s.params<LambdaParams>(), c); }},
      {"topk",
       [](const AttentionSpec& s, const RuleCall& c) {
         const TopKParams& p = s.params<TopKParams>();
         if (c.layer < p.top_k_from_layer || c.layer >= p.top_k_to_layer) return lambda_of(p.lambda, c);
         return topk_rule(c.q, c.k, c.q_offset, p.lambda.local_branch, p.lambda.global_branch, p.lambda.limit(),
                          p.top_k, p.top_k_insert_at, *c.encoding, c.seq_len, c.scale);
       }},
      {"streaming",
       [](const AttentionSpec& s, const RuleCall& c) {
         const StreamingParams& p = s.params<StreamingParams>();
         return streaming_rule(queries(c), keys(c), c.q_offset, p.start_size, p.recent_size);
       }},
      {"distance_limit",
       [](const AttentionSpec& s, const RuleCall& c) {
         const DistanceLimitParams& p = s.params<DistanceLimitParams>();
         return distance_limit_rule(queries(c), keys(c), c.q_offset, p.limit(), p.local_branch, p.global_branch,
                                    p.triangle_offset);
       }},
      {"self_extend",
       [](const AttentionSpec& s, const RuleCall& c) {
         const SelfExtendParams& p = s.params<SelfExtendParams>();
         return self_extend_rule(queries(c), keys(c), c.q_offset, p.group_size, p.neighbor_window);
       }},
      {"rerope",
       [](const AttentionSpec& s, const RuleCall& c) {
         const ReropeParams& p = s.params<ReropeParams>();
         return rerope_rule(queries(c), keys(c), c.q_offset, p.window, p.leaky_k, p.log_scale_base);
       }},
      {"dca",
       [](const AttentionSpec& s, const RuleCall& c) {
         const DcaParams& p = s.params<DcaParams>();
         return dca_rule(queries(c), keys(c), c.q_offset, p.chunk_size, p.local_window);
       }},
      {"infllm",
       [](const AttentionSpec& s, const RuleCall& c) {
         const InfLLMParams& p = s.params<InfLLMParams>();
         const InfLLMRuleSizes sizes{p.n_init,    p.n_local,        p.memory_block_size, p.topk,
                                     p.repr_topk, p.exc_block_size, p.perhead};
         return infllm_rule(c.q, c.k, c.q_offset, sizes, *c.encoding, c.seq_len, c.scale);
       }},
  };
  return table;
}

}  // namespace

const VariantRule* variant_rule(const std::string& variant) {
  for (const auto& [name, rule] : rules())
    if (name == variant) return &rule;
  return nullptr;
}

std::vector<std::string> variants_with_rules() {
  std::vector<std::string> names;
  for (const auto& r : rules()) names.push_back(r.first);
  return names;
}

}  // namespace lminf
