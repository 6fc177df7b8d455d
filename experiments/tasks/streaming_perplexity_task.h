// Task `streaming_perplexity`: LM-Infinite's streaming evaluation (spec sections 2.11 and 4.2) done
// exactly and resumably. The documents (experiments/data/token_stream.h) form one stream with a single
// BOS; it is fed in chunks of chunk_size tokens through the variant's bounded KV cache (lambda:
// first G + last L pre-RoPE K/V; streaming: sinks + window), and the NLL of every stream token after
// the first is written as it goes -- token p is predicted by the hidden state at p - 1, across chunk
// boundaries too (the original skips each chunk's first token, spec section 8 item 13), so the
// numbers do not depend on chunk_size.
//
// Outputs in output.dir:
//   token_nll.h5      extendible float32 dataset token_nll [n]: NLL of stream token p at row p - 1;
//                     appended in place, flushed every flush_every tokens
//   stream_state.h5   the resume point (experiments/tasks/stream_state.h), replaced atomically after
//                     each flush of token_nll.h5: tokens written, stream cursor, the next input
//                     token, running sums, config hash, and the KV cache of every layer (every
//                     tensor-parallel rank's shard)
//   results.json      the running summary (atomic, at each flush and at the end; complete: true at
//                     the end): tokens, mean NLL, perplexity, NLL by log2 position bucket and by
//                     fixed segment, tokens/s, memory
// A run killed at any moment resumes, with the same configuration (max_tokens, flush_every and
// progress_interval may change), from its last flush, and ends with the numbers of an uninterrupted
// run: the cache is restored exactly and the chunks fall on the same boundaries.
//
// One stream cannot be split without changing its numbers: data_parallel must be 1. Under tensor
// parallelism every rank feeds the stream; rank 0 alone writes (it gathers the cache shards).
#pragma once

#include "experiments/tasks/task_base.h"

namespace lminf {

struct StreamingPerplexitySpec {
  static constexpr const char* kType = "streaming_perplexity";  // task.type
  int64_t chunk_size = 2048;
  int64_t max_tokens = 0;
  bool shuffle = true;
  bool repeat = false;
  std::string separator = "none";
  int64_t flush_every = 1000000;
  int64_t segment = 1000000;
  double progress_interval = 10.0;
  template <class V>
  void visit(V& v) {
    v("chunk_size", chunk_size, "tokens per forward call (the numbers do not depend on it)", Min{1});
    v("max_tokens", max_tokens, "stop after predicting this many tokens (0: the whole stream, once; required with "
      "repeat and with a variant whose KV cache is unbounded)", Min{0});
    v("shuffle", shuffle, "shuffle the documents (with the experiment seed, again at every pass) before joining them");
    v("repeat", repeat, "start another pass over the documents when the last one ends (needs max_tokens)");
    v("separator", separator, "between documents: none (LM-Infinite's stream) or eos (the model's eos_token_id after "
      "each document)", Choices{"none", "eos"});
    v("flush_every", flush_every, "write the NLLs and the resume state to disk every this many tokens "
      "(rounded up to whole chunks)", Min{1});
    v("segment", segment, "width, in stream positions, of the per-segment mean NLL in results.json (0: none)", Min{0});
    v("progress_interval", progress_interval, "seconds between progress lines on stderr", Min{0.1});
  }
};

// The keys of an experiment that decide the numbers of a streaming run, as YAML text: everything but
// name, threads, output, sweep and task.{max_tokens, flush_every, progress_interval}. A run resumes
// only from files written with the same text (compared through its hash).
std::string streaming_resume_config(const ExperimentSpec& spec, const YAML::Node& task_resolved);

class StreamingPerplexityTask final : public SpecTask<StreamingPerplexitySpec> {
 public:
  std::vector<std::string> problems(const ExperimentSpec& spec, const ModelConfig& model) const override;
  // None for the generic overwrite check: a partial run's files are resumed from (or refused with
  // the reason) by run() itself.
  std::vector<std::string> outputs() const override { return {}; }
  void run(RunContext& ctx) override;
};

}  // namespace lminf
