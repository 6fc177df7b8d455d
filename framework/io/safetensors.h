// Reading and writing one Hugging Face .safetensors file.
//
// Layout: an 8-byte little-endian uint64 N, N bytes of UTF-8 JSON header, then the data buffer.
//   {"__metadata__": {str: str},
//    "name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
// Offsets are relative to the start of the data buffer; data are little-endian and row-major.
//
// SafetensorsFile maps the file (mmap, read-only) and validates the whole header up front; a
// tensor's bytes are touched only when it (or a slice of it) is loaded, so a tensor-parallel rank
// that loads its rows of each weight keeps only those resident.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lminf {

struct TensorInfo {
  std::string dtype;                    // as stored: "F32", "BF16", "I64", ...
  at::ScalarType scalar_type;           // the matching ATen dtype
  std::vector<int64_t> shape;           // [] for a scalar
  uint64_t begin = 0, end = 0;          // byte range in the data buffer, end - begin = numel * itemsize

  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws Error naming the file (and tensor) and the fix.
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;  // move-only: declaring the moves deletes the copies
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;

  const std::filesystem::path& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool has(const std::string& name) const { return infos_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // Error listing close names if absent
  std::map<std::string, std::string> metadata() const { return metadata_; }

  // A new owned contiguous CPU tensor of `dtype`. Floating data convert to any floating dtype;
  // integer and bool data convert to integer, bool or floating dtypes.
  at::Tensor load(const std::string& name, at::ScalarType dtype);

  // Only shape[dim] rows start .. start+length-1 along `dim` are read, e.g. a tensor-parallel rank's
  // rows (dim 0, column-parallel) or columns (dim 1, row-parallel) of a [out, in] weight.
  // Returns a new owned contiguous tensor of shape `shape` with shape[dim] = length.
  at::Tensor load_slice(const std::string& name, int64_t dim, int64_t start, int64_t length,
                        at::ScalarType dtype);

  // Bytes copied out of the file by load/load_slice so far (the weight bytes this process holds).
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  void unmap();

  std::filesystem::path path_;
  void* map_ = nullptr;              // the whole file, PROT_READ / MAP_PRIVATE
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;    // start of the data buffer inside map_ (any alignment)
  uint64_t data_size_ = 0;
  std::map<std::string, TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
  uint64_t bytes_read_ = 0;
};

// Writes `tensors` (float32/float16/bfloat16/float64/int64/int32/int16/int8/uint8/bool; any device
// and layout, stored contiguous) in the given order. The header is padded with spaces so the data
// start 8-byte aligned. Writes `path`.tmp-<pid> in the same folder and renames it into place.
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// "F32" <-> at::kFloat, ...; dtype_from_safetensors returns false for a name lminf does not read.
bool dtype_from_safetensors(const std::string& name, at::ScalarType* out);
std::string safetensors_dtype_name(at::ScalarType t);  // throws Error for an unsupported dtype

// Up to `max_n` of `candidates` closest to `name` (edit distance), for "did you mean" messages.
std::vector<std::string> closest_names(const std::string& name,
                                       const std::vector<std::string>& candidates, size_t max_n = 5);

}  // namespace lminf
