// The resume state of task streaming_perplexity (experiments/tasks/streaming_perplexity_task.h), as
// named structs with explicit save/load to stream_state.h5's attributes and datasets:
//   StreamPoint  where the stream stands (tokens done, cursor, next input token, ended)
//   RunningNll   the running NLL sums in stream order (overall, by log2 position bucket, by segment)
//   the KV cache of every layer, every tensor-parallel rank's shard (cache/layer_LLL/{k,v})
//   NllLog       token_nll.partial.f32: every NLL so far, append-only (token_nll.h5 is built from it)
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/data/token_stream.h"
#include "framework/io/h5_file.h"
#include "framework/transformer/kv_cache.h"
#include "parallel/communicator.h"

namespace lminf {

// Where a streaming run stands: attributes tokens, cursor, next_token and ended of the state file.
struct StreamPoint {
  bool resume = false;      // a run that continues an earlier one's state (not saved)
  int64_t tokens = 0;       // NLLs written (= tokens fed)
  StreamCursor cursor;      // of the token after next_token
  int64_t next_token = -1;  // stream token `tokens`: the next input
  bool ended = false;       // the (non-repeating) stream ended there

  // Every field in one fixed order (the broadcast's), each as int64.
  template <class F>
  void each_field(F&& f) {
    f(resume);
    f(tokens);
    f(cursor.position);
    f(cursor.epoch);
    f(cursor.document);
    f(cursor.offset);
    f(next_token);
    f(ended);
  }
  // Rank 0's point on every rank of `world` (one broadcast).
  void broadcast(Communicator& world);
  void save(H5Writer& st) const;
  // The point of a state file written by save() (resume: true); checks that the cursor follows the tokens.
  static StreamPoint load(const H5Reader& st, const std::string& state_path);
};

// Running sums of the NLLs in stream order (float64, one token at a time, so a resumed run that
// restores them adds in the same order as an uninterrupted one).
struct RunningNll {
  int64_t segment = 0;  // 0: no segments
  int64_t tokens = 0;
  double sum = 0;
  std::vector<double> log_sum;  // bucket k: stream positions [2^k, 2^(k+1))
  std::vector<int64_t> log_count;
  std::vector<double> seg_sum;  // segment j: stream positions [j * segment, (j + 1) * segment)
  std::vector<int64_t> seg_count;

  // nll[i] is the NLL of the token at stream position first_position + i.
  void add(int64_t first_position, const float* nll, int64_t n);
  double mean() const;  // NaN before the first token
  // tokens, mean_nll, ppl, log2_buckets, segment, segments (results.json)
  nlohmann::json to_json() const;
  void save(H5Writer& h5) const;
  void load(const H5Reader& h5);
};

// Every rank's cache shards gathered to rank 0 one layer at a time as cache/layer_LLL/{k,v}
// [tp, B, Hkv_local, S, D] (collective on every rank; `st` is null on the others).
void save_cache_shards(Communicator& world, KVCache& cache, int64_t n_layer, H5Writer* st);

// The cache of a state file written by save_cache_shards: rank 0 reads (`st`; null on the others),
// every rank takes its shard, converted to the model's device and dtype. Collective.
void restore_cache_shards(Communicator& world, KVCache& cache, int64_t n_layer, const H5Reader* st, const std::string& state_path,
                          at::Device device, at::ScalarType dtype);

// The NLLs of a streaming run so far, as an append-only file that a kill at any moment cannot damage
// below its last durable point: a 64-byte text header ("lminf.stream_nll 1 <config hash>", padded
// with spaces, ending in a newline), then one little-endian float32 per stream token. sync() makes
// what was appended durable (before the state that counts it is written); opening for a resume
// truncates the file to the tokens the state counts, dropping what a killed run wrote after it.
class NllLog {
 public:
  static constexpr int64_t kHeaderBytes = 64;
  // A new log (replacing any file at `path`).
  static NllLog create(const std::filesystem::path& path, const std::string& config_hash);
  // An existing log of the run `config_hash`, truncated to `tokens` NLLs; fails (naming the file and
  // the fix) when it belongs to another run or holds fewer.
  static NllLog resume(const std::filesystem::path& path, const std::string& config_hash, int64_t tokens);
  ~NllLog();
  NllLog(NllLog&& other) noexcept;
  NllLog& operator=(NllLog&& other) noexcept;
  NllLog(const NllLog&) = delete;
  NllLog& operator=(const NllLog&) = delete;

  void append(const float* nll, int64_t n);
  void sync();  // fsync: every NLL appended so far is on disk
  int64_t tokens() const { return tokens_; }
  // `n` NLLs from token `first` (for writing token_nll.h5).
  std::vector<float> read(int64_t first, int64_t n) const;

 private:
  NllLog(std::filesystem::path path, int fd, int64_t tokens) : path_(std::move(path)), fd_(fd), tokens_(tokens) {}
  std::filesystem::path path_;
  int fd_ = -1;
  int64_t tokens_ = 0;
};

}  // namespace lminf
