// The HDF5 outputs that `lminf analyze` reads, named in one place: schema names and versions, file
// names, and every dataset path of a factor dump (docs/hdf5.md describes each). Writers (the factor
// observers, the factor dump, the perplexity tasks) and readers (analysis/report/) both spell paths
// through these functions, so a path cannot drift between the two.
//
//   token_nll.h5        schema lminf.token_nll v1   dataset token_nll
//   <dump.file>         schema lminf.factors v1     groups factor1/ factor2/ factor3/ sequences/
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace lminf::dump_schema {

// ---- schemas (root attributes "schema" and "schema_version") ----
inline constexpr const char* kFactors = "lminf.factors";
inline constexpr int64_t kFactorsVersion = 1;
inline constexpr const char* kTokenNll = "lminf.token_nll";
inline constexpr int64_t kTokenNllVersion = 1;

// ---- per-token NLL (tasks perplexity, attention_dump with task.nll, streaming_perplexity) ----
inline constexpr const char* kTokenNllFile = "token_nll.h5";
inline constexpr const char* kTokenNllDataset = "token_nll";

// ---- factor dumps ----
inline constexpr const char* kFactor1 = "factor1";  // logits: chosen queries, statistics by distance
inline constexpr const char* kFactor2 = "factor2";  // attention entropy
inline constexpr const char* kFactor3 = "factor3";  // sampled features
inline constexpr const char* kLayerPrefix = "layer_";

// "layer_03": the group of an attention layer (0-based block index).
inline std::string layer_group(int64_t layer) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%02lld", kLayerPrefix, static_cast<long long>(layer));
  return buf;
}
// "factor2/layer_03/": the prefix of a layer's datasets under a factor group.
inline std::string layer_prefix(const std::string& factor, int64_t layer) {
  return factor + "/" + layer_group(layer) + "/";
}

// factor1: chosen queries (QueryLogitsObserver) and logit statistics by distance (LogitDistanceObserver)
inline std::string query_logits(int64_t layer) { return layer_prefix(kFactor1, layer) + "query_logits"; }
inline constexpr const char* kQuerySequence = "factor1/query_sequence";
inline constexpr const char* kQueryPosition = "factor1/query_position";
inline constexpr const char* kDistanceEdges = "factor1/distance_edges";

// factor3: sampled features (FeatureSampleObserver)
inline constexpr const char* kSampleSequence = "factor3/sample_sequence";
inline constexpr const char* kSamplePosition = "factor3/sample_position";
inline constexpr const char* kHiddenGroup = "factor3/hidden";
inline constexpr const char* kHiddenPrefix = "hs_";
// "hs_02": hidden state `index` (0 = the embeddings, i = the output of block i - 1) under kHiddenGroup.
inline std::string hidden_state_name(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%02lld", kHiddenPrefix, static_cast<long long>(index));
  return buf;
}
// "factor3/query" etc.: the group of a per-head feature site (query, key, attn_out)
inline std::string feature_site_group(const std::string& site) { return std::string(kFactor3) + "/" + site; }

}  // namespace lminf::dump_schema
