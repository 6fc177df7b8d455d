// The optional `dump:` section of an experiment: which factor analyses (attention logits, attention
// entropy, positional features) any task records into an HDF5 dump in output.dir (schema in
// docs/hdf5.md). With `factors: []` (the default) nothing is observed and the run pays nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/transformer/model_config.h"
#include "framework/config/spec.h"

namespace lminf {

struct DumpSpec {
  std::string file = "factors.h5";
  std::vector<std::string> factors;
  std::vector<int64_t> layers;
  std::vector<int64_t> heads;
  std::vector<int64_t> sequences;
  int64_t query_stride = 0;
  int64_t distance_bucket = 64;
  std::vector<int64_t> distance_edges;
  std::vector<std::string> feature_sites = {"hidden", "query", "key", "attn_out"};
  std::vector<int64_t> hidden_states;
  int64_t feature_first = 64;
  int64_t feature_stride = 64;
  int64_t flush_every = 0;

  bool enabled() const { return !factors.empty(); }
  bool has(const std::string& factor) const;

  template <class V>
  void visit(V& v) {
    v("file", file, "dump file name in output.dir");
    v("factors", factors,
      "what to record: logits (factor 1: chosen queries' logits, max/mean logit per distance bucket), entropy "
      "(factor 2: per-query attention entropy), features (factor 3: hidden states, queries, keys, attention "
      "outputs); [] records nothing",
      Choices{"logits", "entropy", "features"});
    v("layers", layers, "attention layers (0-based decoder blocks) for logits, entropy, queries/keys/outputs; [] = all", Min{0});
    v("heads", heads, "global query heads recorded ([] = all); keys: the key/value heads these use", Min{0});
    v("sequences", sequences, "0-based indices of the task's sequences to record ([] = all)", Min{0});
    v("query_stride", query_stride,
      "factor 1 chosen queries: 0 = the last position of each sequence; s = positions s-1, 2s-1, ... and the last",
      Min{0});
    v("distance_bucket", distance_bucket, "width of the relative-distance buckets (when distance_edges is [])", Min{1});
    v("distance_edges", distance_edges,
      "explicit bucket edges, strictly increasing (bucket b: edges[b] <= distance < edges[b+1]); [] = uniform", Min{0});
    v("feature_sites", feature_sites, "factor 3 sites", Choices{"hidden", "query", "key", "attn_out"});
    v("hidden_states", hidden_states,
      "factor 3 hidden states, Hugging Face numbering (l = output of decoder block l, 1-based); [] = 1-5, 10, 20 "
      "where present",
      Min{1});
    v("feature_first", feature_first, "factor 3: record the first N positions of each sequence", Min{0});
    v("feature_stride", feature_stride, "factor 3: and every s-th position after them (0: none)", Min{0});
    v("flush_every", flush_every,
      "0: the dump is written atomically at the end; N: written in place and flushed every N sequences "
      "(readable during the run; root attribute complete = 0 until the end)",
      Min{0});
  }
};

// Every problem of `dump` with this model and parallel layout (empty: none). Before any weight is read.
std::vector<std::string> dump_problems(const DumpSpec& dump, const ModelConfig& model, int64_t data_parallel);

// The resolved selections (defaults applied) of a valid dump section.
std::vector<int64_t> dump_layers(const DumpSpec& dump, const ModelConfig& model);
std::vector<int64_t> dump_hidden_states(const DumpSpec& dump, const ModelConfig& model);
std::vector<int64_t> dump_kv_heads(const DumpSpec& dump, const ModelConfig& model);  // used by the recorded heads

}  // namespace lminf
