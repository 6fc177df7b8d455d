// Internals of the HDF5 reader and writer (framework/io/h5_file.h), shared by h5_writer.cpp and
// h5_reader.cpp: identifier ownership, paths, dtypes, property lists. Not a public interface.
#pragma once

#include <hdf5.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lminf::h5_internal {
namespace fs = std::filesystem;

// Datasets bigger than this many elements are chunked and compressed.
constexpr int64_t kCompressAbove = 1024;
constexpr unsigned kGzipLevel = 4;
// Target chunk size for write(); under HDF5's default 1 MiB chunk cache.
constexpr hsize_t kChunkTargetBytes = 256 * 1024;
constexpr hsize_t kMaxChunkBytes = (hsize_t{1} << 32) - 1;  // an HDF5 limit

herr_t close_id(hid_t id);

// Owns one HDF5 identifier and closes it with the matching H5?close.
class H5Id {
 public:
  H5Id() = default;
  explicit H5Id(hid_t id) : id_(id) {}
  ~H5Id() { reset(); }
  H5Id(H5Id&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  H5Id& operator=(H5Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }
  void reset() noexcept {
    if (id_ >= 0) close_id(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Errors go through exceptions only. HDF5 keeps this per process (per thread in thread-safe
// builds); every writer and reader sets it, so the last one to set it wins and all agree.
// Before the first HDF5 call it also keeps HDF5 from closing files at exit (H5dont_atexit): a file
// whose close failed (a full disk) is half-closed inside HDF5 1.10, and closing it again at exit
// crashes the process after its error was reported. Every writer closes or discards its file itself.
inline void silence_hdf5_errors() {
  static const bool no_atexit = [] { return H5dont_atexit() >= 0; }();
  (void)no_atexit;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

// The most specific message on HDF5's error stack (empty if none); call right after a failure.
std::string h5_detail();

// "a/b", "/a/b" -> "/a/b"; "", "/" -> "/". Empty components ("a//b", "a/") are refused.
std::string normalize(const std::string& file, const std::string& path);

// Whether every component of the normalized path `p` exists (walks, since H5Lexists fails when
// an intermediate component is missing).
bool path_exists(hid_t file, const std::string& p);

std::vector<std::string> list_group(hid_t group);

// " (the group /a holds: x, y)" for messages about a missing object.
std::string missing_hint(hid_t file, const std::string& p);

// Opens a group or dataset; errors name the file and say what is there instead.
H5Id open_object(hid_t file, const std::string& file_name, const std::string& p);

// Refuses to create `p` when one of its parents is a dataset (HDF5's own message is cryptic).
void check_parents_are_groups(hid_t file, const std::string& file_name, const std::string& p);

H5Id open_dataset(hid_t file, const std::string& file_name, const std::string& p, hid_t dapl = H5P_DEFAULT);

// How a tensor dtype is stored; nullopt if it cannot be.
std::optional<at::ScalarType> storage_dtype(at::ScalarType s);

hid_t file_type(at::ScalarType stored);

hid_t memory_type(at::ScalarType s);

// The tensor dtype a stored HDF5 type reads as.
at::ScalarType read_dtype(hid_t type, const std::string& file_name, const std::string& p);

std::vector<int64_t> dataset_dims(hid_t ds, std::vector<hsize_t>* maxdims = nullptr);

// t as stored: CPU, storage dtype, contiguous.
at::Tensor to_storage(const at::Tensor& t, const std::string& file_name, const std::string& p);

// Chunk shape for write(): the full shape, halving dim 0, then dim 1, ... until under the target.
// Keeping the inner dims whole makes row slabs (read_rows) read few chunks.
std::vector<hsize_t> guess_chunk(const std::vector<hsize_t>& dims, size_t elem_bytes);

// Files: HDF5 1.8 format (readable everywhere; allows large attributes); no file locking, so
// readers can open an in-place file while it is written and file systems without flock work.
H5Id make_fapl(const std::string& file_name);

// Links that create missing intermediate groups.
H5Id make_lcpl(const std::string& file_name);

// Dataset access with a chunk cache that holds two chunks, so appends of partial chunks do not
// recompress a chunk each time.
H5Id make_extendible_dapl(hsize_t chunk_bytes, const std::string& file_name);

void check_hdf5_file(const fs::path& path, const std::string& what);

}  // namespace lminf::h5_internal
