// The `attention:` section of an experiment. One struct for every variant's parameters; each
// variant states which it uses (attention/registry.cpp), and the loader rejects parameters a variant
// ignores, invalid values and unsupported combinations before any weight is read.
//
// Positions and distances are cache indices (spec section 2.11): a bounded cache renumbers the
// entries it keeps, so a query at cache index p and a key at cache index j are d = p - j apart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lminf {

struct AttentionSpec {
  std::string variant = "vanilla";
  int64_t block_size = 256;       // query rows per tile of the blockwise kernels
  int64_t key_block_size = 1024;  // key columns per tile (online softmax across tiles)

  // lambda, topk (LM-Infinite); distance_limit (the ablation)
  int64_t local_branch = 4096;  // L: keys at distance d < L are seen at their true distance
  int64_t global_branch = 10;   // G: starting tokens j < G stay visible beyond the window
  // D. Three states: 0 (the default) = "unset", resolved to local_branch (see limit()); a positive
  // value; YAML null = no distance ceiling (lambda: the lambda mask alone, far starting tokens at
  // their true distance; distance_limit: no ceiling, only triangle_offset). 0 is kept in the resolved
  // spec, so a written config reads back with the same meaning.
  std::optional<int64_t> limit_distance = 0;

  // topk (spec section 2.5)
  int64_t top_k = 5;               // middle keys retrieved per (sequence, head) on the last query row
  int64_t top_k_from_layer = 4;    // first layer (0-based, inclusive) that retrieves
  int64_t top_k_to_layer = 1000;   // last layer (exclusive)
  int64_t top_k_insert_at = 2048;  // distance at which middle keys are scored and seen

  // streaming (StreamingLLM)
  int64_t start_size = 4;      // attention sinks: the first tokens of the stream
  int64_t recent_size = 2000;  // recent window, the query included

  // distance_limit (spec section 2.3)
  double triangle_offset = 0.0;  // tau: middle logits (j >= G, d >= L) get -tau * ln(p - L + 1 - G)

  // D as the variants use it: limit_distance, local_branch when 0, nullopt for null (no ceiling).
  std::optional<int64_t> limit() const {
    if (!limit_distance) return std::nullopt;
    return *limit_distance == 0 ? local_branch : *limit_distance;
  }

  template <class V>
  void visit(V& v) {
    v("variant", variant, "attention variant (see `lminf variants`): vanilla, lambda, topk, streaming, distance_limit");
    v("block_size", block_size, "query rows per tile of the blockwise kernel (memory ~ block_size x key_block_size per head)");
    v("key_block_size", key_block_size,
      "key columns per tile of the blockwise kernel; lambda/streaming compute a query tile's band and starting "
      "columns as one tile when the starting columns fit in key_block_size and the band in 16 x key_block_size");
    v("local_branch", local_branch,
      "L [lambda, topk, distance_limit]: keys at distance d < L are seen at their true distance; the model's "
      "pretraining length is the paper's choice (Llama-2: 4096)");
    v("global_branch", global_branch,
      "G [lambda, topk, distance_limit with triangle_offset]: the first G tokens of the stream stay visible at "
      "any distance (paper: 10 to 100); 0 gives a plain sliding window");
    v("limit_distance", limit_distance,
      "D [lambda, topk, distance_limit]: distance at which far keys are seen: lambda and topk see far starting "
      "tokens at min(D, K-1), distance_limit every key at min(d, D); 0 = local_branch (the paper's setting); "
      "null = no ceiling (far tokens at their true distance)");
    v("top_k", top_k, "[topk] middle keys retrieved per (sequence, head) on the last query row of each forward call");
    v("top_k_from_layer", top_k_from_layer, "[topk] first layer (0-based, inclusive) that retrieves middle keys");
    v("top_k_to_layer", top_k_to_layer, "[topk] layer where retrieval stops (exclusive)");
    v("top_k_insert_at", top_k_insert_at,
      "[topk] distance at which middle keys are scored and seen (query rotated to it, key unrotated)");
    v("start_size", start_size, "[streaming] attention sinks: the first start_size tokens of the stream");
    v("recent_size", recent_size,
      "[streaming] recent window, the query included; positions are re-indexed inside sinks + window");
    v("triangle_offset", triangle_offset,
      "tau [distance_limit]: logits of middle keys (j >= G, d >= L) get -tau * ln(p - L + 1 - G), so the middle "
      "weighs like n_mid^-tau of its softmax mass; 0 = off");
  }
};

}  // namespace lminf
