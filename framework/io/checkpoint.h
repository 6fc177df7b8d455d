// A Hugging Face model folder's weights: model.safetensors, or the shards that
// model.safetensors.index.json names. Every shard is memory-mapped; only what is loaded is read.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/io/safetensors.h"

namespace lminf {

class Checkpoint {
 public:
  // Opens `dir`/model.safetensors.index.json and every shard it names when present, else
  // `dir`/model.safetensors; throws Error naming the folder (and index, shard, tensor) and the fix.
  static Checkpoint open(const std::filesystem::path& dir);

  Checkpoint(Checkpoint&&) = default;
  Checkpoint& operator=(Checkpoint&&) = default;
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::vector<std::string> names() const;  // sorted, over all shards
  bool has(const std::string& name) const { return shard_of_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // Error listing close names if absent

  // See SafetensorsFile::load / load_slice: new owned contiguous CPU tensors of `dtype`.
  at::Tensor load(const std::string& name, at::ScalarType dtype);
  at::Tensor load_slice(const std::string& name, int64_t dim, int64_t start, int64_t length,
                        at::ScalarType dtype);

  uint64_t bytes_read() const;  // summed over the shards

  // Error "DIR: tensor 'NAME' has shape [64, 64] but config.json implies [128, 64] (...)".
  void check_shape(const std::string& name, const std::vector<int64_t>& expected) const;

 private:
  Checkpoint() = default;
  size_t shard_index(const std::string& name) const;

  std::filesystem::path dir_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, size_t> shard_of_;  // tensor name -> index into shards_
};

// Writes `tensors` into `dir` (created if needed): n_shards == 1 writes model.safetensors (and
// removes a stale model.safetensors.index.json, which would shadow it); n_shards > 1 writes
// model-0000i-of-0000n.safetensors, each tensor going to the shard with the fewest bytes so far
// (largest first), plus model.safetensors.index.json. Does not write config.json.
void write_checkpoint(const std::filesystem::path& dir,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      int n_shards = 1);

}  // namespace lminf
