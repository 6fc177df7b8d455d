// HDF5 outputs (C API underneath, hidden here): a writer for tensors, attributes and extendible
// datasets, and a reader for the same files. Every HDF5 failure becomes an lminf::Error that names
// the file and the dataset; the HDF5 error stack is never printed.
//
// Dataset and object paths are slash-separated, with or without a leading "/":
// "factor1/layer_03/logits". The writer creates intermediate groups; "/" is the root group.
//
// Stored dtypes: float32, float64, int64, int32, uint8. bool is stored as uint8, bfloat16 and
// float16 as float32. Datasets over 1024 elements are chunked and compressed (shuffle + gzip 4).
// Files use the HDF5 1.8 format, readable by any HDF5 >= 1.8 and by h5py.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace lminf {

// Writes one new HDF5 file.
//
// Default (atomic): H5Writer w(path) writes a hidden temporary next to `path`; commit() closes it
// and renames it onto `path`. Destroyed without commit(), the temporary is removed and nothing
// appears at `path` (an existing file there is left untouched).
//
// In place: H5Writer::open_in_place(path) creates the file at `path` itself, replacing any old
// file there at once. For long streaming runs: flush() writes everything so far to disk, after
// which another process (or an H5Reader) can open the file and read it; a reader that opens it
// while the writer is between flushes may see an inconsistent file and should reopen after the
// next flush. The file is left in place whether or not commit() is called (commit() only closes
// it). Writers and readers open files with HDF5 file locking off, so readers such as h5py can
// look in while the run goes on (and file systems without flock work); keeping a second writer
// away is the caller's job (one run owns its folder). H5Writer::resume_in_place(path) reopens such
// a file as a killed run left it (the 1.8 format needs no h5clear after a crash) to append more
// through open_extendible(); what was written after the last flush() may be missing or partial,
// so resume from a count the run recorded before that flush (Extendible::resize).
//
// Not thread-safe. Movable, not copyable.
class H5Writer {
  struct Impl;

 public:
  // A dataset of shape [rows, inner...] that grows along dim 0, written by append().
  // Valid while its writer is open; once the writer is committed or destroyed, its methods throw.
  class Extendible {
   public:
    ~Extendible();
    Extendible(Extendible&&) noexcept;
    Extendible& operator=(Extendible&&) noexcept;
    Extendible(const Extendible&) = delete;
    Extendible& operator=(const Extendible&) = delete;

    // rows: [n, inner...], a dtype stored as dtype() (see the file comment), any device;
    // n may be 0. Extends the dataset by n rows and writes them.
    void append(const at::Tensor& rows);
    // Truncates to the first n rows (n <= rows()), e.g. to drop a step a killed run half-wrote.
    void resize(int64_t n);
    int64_t rows() const;
    at::ScalarType dtype() const;  // the stored dtype
    const std::vector<int64_t>& inner_shape() const;
    const std::string& path() const;

   private:
    friend class H5Writer;
    struct State;
    explicit Extendible(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
  };

  // Atomic mode (see above). Throws if the temporary cannot be created.
  explicit H5Writer(const std::filesystem::path& path);
  // In-place mode: a new file at `path`, replacing any old one now.
  static H5Writer open_in_place(const std::filesystem::path& path);
  // In-place mode on an existing file written by open_in_place (to resume a killed run).
  static H5Writer resume_in_place(const std::filesystem::path& path);

  ~H5Writer();
  H5Writer(H5Writer&&) noexcept;
  H5Writer& operator=(H5Writer&&) noexcept;
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  // t: any rank, a supported dtype, any device, any strides. Throws if `path` exists.
  void write(const std::string& path, const at::Tensor& t);

  // Creates the group (and its parents); no-op if it exists. For attributes on a group that
  // holds no datasets yet.
  void create_group(const std::string& path);

  // Attribute `name` on the existing group or dataset `object_path`; replaces an existing one.
  // Strings are variable-length UTF-8 (h5py reads them as str); integers are stored as int64,
  // floating-point values as float64, vectors as 1-D arrays.
  void set_attr(const std::string& object_path, const std::string& name, const std::string& value);
  void set_attr(const std::string& object_path, const std::string& name, const char* value) {
    set_attr(object_path, name, std::string(value));
  }
  void set_attr(const std::string& object_path, const std::string& name, int64_t value);
  void set_attr(const std::string& object_path, const std::string& name, double value);
  void set_attr(const std::string& object_path, const std::string& name, const std::vector<int64_t>& value);
  void set_attr(const std::string& object_path, const std::string& name, const std::vector<double>& value);
  // Other integer types (int, size_t, bool, ...) go through int64_t.
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, int64_t>, int> = 0>
  void set_attr(const std::string& object_path, const std::string& name, T value) {
    set_attr(object_path, name, checked_int64(value, object_path, name));
  }

  // An empty dataset [0, inner...], unlimited along dim 0, chunked as [chunk_rows, inner...]
  // and compressed. dtype as for write() (bool -> uint8, bfloat16/float16 -> float32). Each
  // Extendible caches two chunks in memory (at least 1 MiB): keep a chunk to a few MiB.
  Extendible create_extendible(const std::string& path, at::ScalarType dtype,
                               std::vector<int64_t> inner_shape, int64_t chunk_rows);
  // An extendible dataset already in the file (resume_in_place).
  Extendible open_extendible(const std::string& path);

  // Writes all buffered data and metadata to disk.
  void flush();
  // Closes the file (and any Extendible of it); in atomic mode renames it onto the final path.
  void commit();

  const std::filesystem::path& path() const;  // the final path

 private:
  explicit H5Writer(std::shared_ptr<Impl> impl);
  template <class T>
  int64_t checked_int64(T value, const std::string& object_path, const std::string& name) const {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(int64_t)) {
      if (value > static_cast<T>(INT64_MAX)) throw_int64_overflow(object_path, name);
    }
    return static_cast<int64_t>(value);
  }
  [[noreturn]] void throw_int64_overflow(const std::string& object_path, const std::string& name) const;
  // A 1-D attribute of n values of HDF5 memory type `memory_type` (an hid_t, kept out of this header).
  void set_vector_attr(const std::string& object_path, const std::string& name, int64_t memory_type,
                       const void* data, size_t n);

  std::shared_ptr<Impl> impl_;  // shared with the Extendibles, which must see the file close
};

// Reads an HDF5 file (written by H5Writer or by h5py). Movable, not copyable.
class H5Reader {
  struct Impl;

 public:
  // Throws, naming the path, if the file is missing or not an HDF5 file.
  explicit H5Reader(const std::filesystem::path& path);
  ~H5Reader();
  H5Reader(H5Reader&&) noexcept;
  H5Reader& operator=(H5Reader&&) noexcept;
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;

  // Whether a group or dataset exists at `path` ("/" always does).
  bool exists(const std::string& path) const;
  std::vector<int64_t> shape(const std::string& path) const;  // [] for a scalar dataset
  // The whole dataset in its stored dtype: float32 -> kFloat, float64 -> kDouble, int64 -> kLong,
  // int32 -> kInt, uint8 -> kByte (also int8 -> kChar, int16 -> kShort). CPU, contiguous.
  at::Tensor read(const std::string& path) const;
  // Rows [start, start + count) along dim 0: [count, inner...].
  at::Tensor read_rows(const std::string& path, int64_t start, int64_t count) const;

  bool has_attr(const std::string& object_path, const std::string& name) const;
  std::string attr_string(const std::string& object_path, const std::string& name) const;
  int64_t attr_int(const std::string& object_path, const std::string& name) const;
  double attr_double(const std::string& object_path, const std::string& name) const;
  std::vector<int64_t> attr_ints(const std::string& object_path, const std::string& name) const;
  std::vector<double> attr_doubles(const std::string& object_path, const std::string& name) const;

  // Names of the children of a group, sorted.
  std::vector<std::string> list(const std::string& group_path) const;

  const std::filesystem::path& path() const;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lminf
