#include "framework/io/h5_file.h"

#include <hdf5.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "framework/io/atomic_file.h"
#include "framework/core/error.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

// Datasets bigger than this many elements are chunked and compressed.
constexpr int64_t kCompressAbove = 1024;
constexpr unsigned kGzipLevel = 4;
// Target chunk size for write(); under HDF5's default 1 MiB chunk cache.
constexpr hsize_t kChunkTargetBytes = 256 * 1024;
constexpr hsize_t kMaxChunkBytes = (hsize_t{1} << 32) - 1;  // an HDF5 limit

// ---- handles ----------------------------------------------------------------------------------

herr_t close_id(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_FILE:
      return H5Fclose(id);
    case H5I_GROUP:
      return H5Gclose(id);
    case H5I_DATASET:
      return H5Dclose(id);
    case H5I_DATASPACE:
      return H5Sclose(id);
    case H5I_DATATYPE:
      return H5Tclose(id);
    case H5I_ATTR:
      return H5Aclose(id);
    case H5I_GENPROP_LST:
      return H5Pclose(id);
    default:
      return -1;  // invalid (e.g. closed with its file): nothing to do
  }
}

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

// The most specific message on HDF5's error stack (empty if none); call right after a failure.
std::string h5_detail() {
  std::string out;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        if (n == 0 && e->desc) *static_cast<std::string*>(data) = e->desc;
        return 0;
      },
      &out);
  return out.empty() ? std::string("HDF5 error") : out;
}

// Errors go through exceptions only. HDF5 keeps this per process (per thread in thread-safe
// builds); every writer and reader sets it, so the last one to set it wins and all agree.
void silence_hdf5_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

// ---- paths ------------------------------------------------------------------------------------

// "a/b", "/a/b" -> "/a/b"; "", "/" -> "/". Empty components ("a//b", "a/") are refused.
std::string normalize(const std::string& file, const std::string& path) {
  size_t i = 0;
  while (i < path.size() && path[i] == '/') ++i;
  std::string rest = path.substr(i);
  if (rest.empty()) return "/";
  size_t start = 0;
  while (true) {
    size_t end = rest.find('/', start);
    std::string part = rest.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty() || part == "." || part == "..") {
      fail(file, ": bad object path '", path,
           "' (use slash-separated names without empty parts, e.g. factor1/layer_03/logits)");
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "/" + rest;
}

// Whether every component of the normalized path `p` exists (walks, since H5Lexists fails when
// an intermediate component is missing).
bool path_exists(hid_t file, const std::string& p) {
  if (p == "/") return true;
  size_t pos = 0;
  while (true) {
    size_t next = p.find('/', pos + 1);
    std::string prefix = p.substr(0, next);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (next == std::string::npos) return true;
    pos = next;
  }
}

std::vector<std::string> list_group(hid_t group) {
  H5G_info_t info;
  if (H5Gget_info(group, &info) < 0) return {};
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) continue;
    std::string name(static_cast<size_t>(n) + 1, '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(n));
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

// " (the group /a holds: x, y)" for messages about a missing object.
std::string missing_hint(hid_t file, const std::string& p) {
  std::string parent = p.substr(0, p.rfind('/'));
  if (parent.empty()) parent = "/";
  while (!path_exists(file, parent) && parent != "/") {
    parent = parent.substr(0, parent.rfind('/'));
    if (parent.empty()) parent = "/";
  }
  H5Id g(H5Gopen2(file, parent.c_str(), H5P_DEFAULT));
  if (!g.valid()) return "";
  std::vector<std::string> names = list_group(g.get());
  std::string out = " (the group " + parent + " holds";
  if (names.empty()) return out + " nothing)";
  out += ":";
  for (size_t i = 0; i < names.size() && i < 20; ++i) out += (i ? ", " : " ") + names[i];
  if (names.size() > 20) out += ", ...";
  return out + ")";
}

// Opens a group or dataset; errors name the file and say what is there instead.
H5Id open_object(hid_t file, const std::string& file_name, const std::string& p) {
  if (!path_exists(file, p)) {
    fail(file_name, ": no group or dataset '", p, "'", missing_hint(file, p));
  }
  H5Id obj(H5Oopen(file, p.c_str(), H5P_DEFAULT));
  if (!obj.valid()) fail(file_name, ": cannot open '", p, "': ", h5_detail());
  return obj;
}

// Refuses to create `p` when one of its parents is a dataset (HDF5's own message is cryptic).
void check_parents_are_groups(hid_t file, const std::string& file_name, const std::string& p) {
  for (size_t slash = p.find('/', 1); slash != std::string::npos; slash = p.find('/', slash + 1)) {
    std::string parent = p.substr(0, slash);
    if (!path_exists(file, parent)) return;
    H5Id obj = open_object(file, file_name, parent);
    if (H5Iget_type(obj.get()) != H5I_GROUP) {
      fail(file_name, ": cannot create '", p, "': '", parent,
           "' is a dataset, not a group (pick a name that is not under a dataset)");
    }
  }
}

H5Id open_dataset(hid_t file, const std::string& file_name, const std::string& p, hid_t dapl = H5P_DEFAULT) {
  if (!path_exists(file, p)) fail(file_name, ": no dataset '", p, "'", missing_hint(file, p));
  {
    H5Id obj = open_object(file, file_name, p);
    if (H5Iget_type(obj.get()) != H5I_DATASET) {
      fail(file_name, ": '", p, "' is a group, not a dataset (give the path of a dataset in it)");
    }
  }
  H5Id ds(H5Dopen2(file, p.c_str(), dapl));
  if (!ds.valid()) fail(file_name, ": cannot open dataset '", p, "': ", h5_detail());
  return ds;
}

// ---- dtypes -----------------------------------------------------------------------------------

// How a tensor dtype is stored; nullopt if it cannot be.
std::optional<at::ScalarType> storage_dtype(at::ScalarType s) {
  switch (s) {
    case at::kFloat:
    case at::kHalf:
    case at::kBFloat16:
      return at::kFloat;
    case at::kDouble:
      return at::kDouble;
    case at::kLong:
      return at::kLong;
    case at::kInt:
      return at::kInt;
    case at::kByte:
    case at::kBool:
      return at::kByte;
    default:
      return std::nullopt;
  }
}

hid_t file_type(at::ScalarType stored) {
  switch (stored) {
    case at::kFloat:
      return H5T_IEEE_F32LE;
    case at::kDouble:
      return H5T_IEEE_F64LE;
    case at::kLong:
      return H5T_STD_I64LE;
    case at::kInt:
      return H5T_STD_I32LE;
    case at::kByte:
      return H5T_STD_U8LE;
    default:
      return H5I_INVALID_HID;
  }
}

hid_t memory_type(at::ScalarType s) {
  switch (s) {
    case at::kFloat:
      return H5T_NATIVE_FLOAT;
    case at::kDouble:
      return H5T_NATIVE_DOUBLE;
    case at::kLong:
      return H5T_NATIVE_INT64;
    case at::kInt:
      return H5T_NATIVE_INT32;
    case at::kShort:
      return H5T_NATIVE_INT16;
    case at::kChar:
      return H5T_NATIVE_INT8;
    case at::kByte:
      return H5T_NATIVE_UINT8;
    default:
      return H5I_INVALID_HID;
  }
}

// The tensor dtype a stored HDF5 type reads as.
at::ScalarType read_dtype(hid_t type, const std::string& file_name, const std::string& p) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) {
    if (size == 4) return at::kFloat;
    if (size == 8) return at::kDouble;
  } else if (cls == H5T_INTEGER) {
    if (H5Tget_sign(type) == H5T_SGN_NONE) {
      if (size == 1) return at::kByte;
    } else {
      switch (size) {
        case 1:
          return at::kChar;
        case 2:
          return at::kShort;
        case 4:
          return at::kInt;
        case 8:
          return at::kLong;
      }
    }
  }
  fail(file_name, ": dataset '", p, "' has an HDF5 type of class ", static_cast<int>(cls), " and size ", size,
       " that lminf does not read (stored dtypes: float32, float64, int8/16/32/64, uint8)");
}

std::vector<int64_t> dataset_dims(hid_t ds, std::vector<hsize_t>* maxdims = nullptr) {
  H5Id space(H5Dget_space(ds));
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) return {};
  std::vector<hsize_t> dims(static_cast<size_t>(rank)), maxd(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), maxd.data());
  if (maxdims) *maxdims = maxd;
  return std::vector<int64_t>(dims.begin(), dims.end());
}

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// t as stored: CPU, storage dtype, contiguous.
at::Tensor to_storage(const at::Tensor& t, const std::string& file_name, const std::string& p) {
  if (!t.defined()) fail(file_name, ": dataset '", p, "': the tensor is undefined (pass a tensor)");
  std::optional<at::ScalarType> stored = storage_dtype(t.scalar_type());
  if (!stored) {
    fail(file_name, ": dataset '", p, "': dtype ", t.scalar_type(),
         " cannot be stored (use float32, float64, int64, int32, uint8, bool, bfloat16 or float16; "
         "convert with .to(at::kFloat))");
  }
  if (t.dim() > H5S_MAX_RANK) {
    fail(file_name, ": dataset '", p, "': rank ", t.dim(), " is over HDF5's limit of ", H5S_MAX_RANK);
  }
  return t.detach().to(at::kCPU, *stored).contiguous();
}

// Chunk shape for write(): the full shape, halving dim 0, then dim 1, ... until under the target.
// Keeping the inner dims whole makes row slabs (read_rows) read few chunks.
std::vector<hsize_t> guess_chunk(const std::vector<hsize_t>& dims, size_t elem_bytes) {
  std::vector<hsize_t> chunk = dims;
  auto bytes = [&] {
    hsize_t b = elem_bytes;
    for (hsize_t c : chunk) b *= c;
    return b;
  };
  for (size_t d = 0; d < chunk.size() && bytes() > kChunkTargetBytes; ++d) {
    while (chunk[d] > 1 && bytes() > kChunkTargetBytes) chunk[d] = (chunk[d] + 1) / 2;
  }
  return chunk;
}

// Files: HDF5 1.8 format (readable everywhere; allows large attributes); no file locking, so
// readers can open an in-place file while it is written and file systems without flock work.
H5Id make_fapl(const std::string& file_name) {
  H5Id fapl(H5Pcreate(H5P_FILE_ACCESS));
  if (!fapl.valid() || H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18) < 0 ||
      H5Pset_file_locking(fapl.get(), false, true) < 0) {
    fail(file_name, ": cannot set up HDF5 file access: ", h5_detail());
  }
  return fapl;
}

// Links that create missing intermediate groups.
H5Id make_lcpl(const std::string& file_name) {
  H5Id lcpl(H5Pcreate(H5P_LINK_CREATE));
  if (!lcpl.valid() || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0 ||
      H5Pset_char_encoding(lcpl.get(), H5T_CSET_UTF8) < 0) {
    fail(file_name, ": cannot set up HDF5 link creation: ", h5_detail());
  }
  return lcpl;
}

// Dataset access with a chunk cache that holds two chunks, so appends of partial chunks do not
// recompress a chunk each time.
H5Id make_extendible_dapl(hsize_t chunk_bytes, const std::string& file_name) {
  H5Id dapl(H5Pcreate(H5P_DATASET_ACCESS));
  size_t cache = std::max<size_t>(size_t{1} << 20, 2 * chunk_bytes);
  if (!dapl.valid() || H5Pset_chunk_cache(dapl.get(), 521, cache, 1.0) < 0) {
    fail(file_name, ": cannot set up HDF5 dataset access: ", h5_detail());
  }
  return dapl;
}

void check_hdf5_file(const fs::path& path, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    fail("cannot ", what, " ", path.string(), ": no such file (check the path)");
  }
  if (fs::is_directory(path, ec)) {
    fail("cannot ", what, " ", path.string(), ": it is a folder (give the path of an .h5 file)");
  }
  htri_t is_h5 = H5Fis_hdf5(path.c_str());
  if (is_h5 == 0) {
    fail("cannot ", what, " ", path.string(),
         ": not an HDF5 file (give the path of an .h5 file written by lminf)");
  }
  if (is_h5 < 0) fail("cannot ", what, " ", path.string(), ": ", h5_detail(), " (check that it is readable)");
}

}  // namespace

// ---- writer -----------------------------------------------------------------------------------

struct H5Writer::Impl {
  fs::path final_path;
  std::string name;                // final_path as a string, for messages
  std::optional<AtomicPath> temp;  // atomic mode only
  H5Id file;
  bool open = false;

  // Closes every object opened through this file, then the file. Returns false on failure.
  bool close() {
    if (!open) return true;
    open = false;
    unsigned types = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL;
    ssize_t n = H5Fget_obj_count(file.get(), types);
    if (n > 0) {
      std::vector<hid_t> ids(static_cast<size_t>(n));
      n = H5Fget_obj_ids(file.get(), types, ids.size(), ids.data());
      for (ssize_t i = 0; i < n; ++i) close_id(ids[static_cast<size_t>(i)]);
    }
    return H5Fclose(file.release()) >= 0;
  }

  // The writer's state, or an error if it was moved from or committed.
  static Impl& checked(const std::shared_ptr<Impl>& impl, const char* what) {
    if (!impl) fail("H5Writer: cannot ", what, ": the writer was moved from");
    if (!impl->open) {
      fail(impl->name, ": cannot ", what, ": the writer was already committed (write before commit())");
    }
    return *impl;
  }
};

H5Writer::H5Writer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

H5Writer::H5Writer(const fs::path& path) {
  silence_hdf5_errors();
  auto impl = std::make_shared<Impl>();
  impl->final_path = path;
  impl->name = path.string();
  impl->temp.emplace(path);
  H5Id fapl = make_fapl(impl->name);
  impl->file = H5Id(H5Fcreate(impl->temp->temp_path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!impl->file.valid()) {
    std::string detail = h5_detail();
    fail("cannot write ", impl->name, " (through ", impl->temp->temp_path().filename().string(),
         "): ", detail, " (check that ", path.parent_path().empty() ? "." : path.parent_path().string(),
         " exists and is writable)");
  }
  impl->open = true;
  impl_ = std::move(impl);
}

H5Writer H5Writer::open_in_place(const fs::path& path) {
  silence_hdf5_errors();
  auto impl = std::make_shared<Impl>();
  impl->final_path = path;
  impl->name = path.string();
  H5Id fapl = make_fapl(impl->name);
  impl->file = H5Id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!impl->file.valid()) {
    std::string detail = h5_detail();
    fail("cannot write ", impl->name, ": ", detail, " (check that ",
         path.parent_path().empty() ? "." : path.parent_path().string(), " exists and is writable)");
  }
  impl->open = true;
  return H5Writer(std::move(impl));
}

H5Writer H5Writer::resume_in_place(const fs::path& path) {
  silence_hdf5_errors();
  check_hdf5_file(path, "resume");
  auto impl = std::make_shared<Impl>();
  impl->final_path = path;
  impl->name = path.string();
  H5Id fapl = make_fapl(impl->name);
  impl->file = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get()));
  if (!impl->file.valid()) {
    std::string detail = h5_detail();
    fail("cannot resume ", impl->name, ": ", detail, " (check that the file is writable)");
  }
  impl->open = true;
  return H5Writer(std::move(impl));
}

H5Writer::~H5Writer() {
  if (!impl_) return;
  impl_->close();
  impl_->temp.reset();  // atomic mode, not committed: removes the temporary
}

H5Writer::H5Writer(H5Writer&&) noexcept = default;

H5Writer& H5Writer::operator=(H5Writer&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      impl_->close();
      impl_->temp.reset();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

const fs::path& H5Writer::path() const {
  if (!impl_) fail("H5Writer: the writer was moved from");
  return impl_->final_path;
}

void H5Writer::throw_int64_overflow(const std::string& object_path, const std::string& name) const {
  fail(impl_ ? impl_->name : std::string("H5Writer"), ": attribute '", name, "' on '", object_path,
       "': the value does not fit in int64 (store it as a double or a string)");
}

void H5Writer::write(const std::string& path, const at::Tensor& t) {
  Impl& f = Impl::checked(impl_, "write a dataset");
  const std::string p = normalize(f.name, path);
  if (p == "/") fail(f.name, ": cannot write a dataset at '/' (give a dataset name)");
  at::Tensor c = to_storage(t, f.name, p);
  if (path_exists(f.file.get(), p)) {
    fail(f.name, ": dataset '", p, "' already exists (each name is written once; pick another name)");
  }
  check_parents_are_groups(f.file.get(), f.name, p);
  std::vector<hsize_t> dims(c.sizes().begin(), c.sizes().end());
  H5Id space(c.dim() == 0 ? H5Screate(H5S_SCALAR)
                          : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
  if (!space.valid() || !dcpl.valid()) fail(f.name, ": cannot set up dataset '", p, "': ", h5_detail());
  if (c.dim() > 0 && c.numel() > kCompressAbove) {
    std::vector<hsize_t> chunk = guess_chunk(dims, c.element_size());
    if (H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()) < 0 ||
        H5Pset_shuffle(dcpl.get()) < 0 || H5Pset_deflate(dcpl.get(), kGzipLevel) < 0) {
      fail(f.name, ": cannot set up compression for dataset '", p, "': ", h5_detail());
    }
  }
  H5Id lcpl = make_lcpl(f.name);
  H5Id ds(H5Dcreate2(f.file.get(), p.c_str(), file_type(c.scalar_type()), space.get(), lcpl.get(), dcpl.get(),
                     H5P_DEFAULT));
  if (!ds.valid()) {
    std::string detail = h5_detail();
    fail(f.name, ": cannot create dataset '", p, "' ", shape_str(c.sizes()), ": ", detail,
         " (a parent may be a dataset, not a group)");
  }
  if (c.numel() > 0 &&
      H5Dwrite(ds.get(), memory_type(c.scalar_type()), H5S_ALL, H5S_ALL, H5P_DEFAULT, c.data_ptr()) < 0) {
    std::string detail = h5_detail();
    fail(f.name, ": cannot write dataset '", p, "': ", detail, " (check free disk space)");
  }
}

void H5Writer::create_group(const std::string& path) {
  Impl& f = Impl::checked(impl_, "create a group");
  const std::string p = normalize(f.name, path);
  if (path_exists(f.file.get(), p)) {
    H5Id obj = open_object(f.file.get(), f.name, p);
    if (H5Iget_type(obj.get()) != H5I_GROUP) {
      fail(f.name, ": cannot create group '", p, "': a dataset has that name (pick another name)");
    }
    return;
  }
  check_parents_are_groups(f.file.get(), f.name, p);
  H5Id lcpl = make_lcpl(f.name);
  H5Id g(H5Gcreate2(f.file.get(), p.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!g.valid()) {
    std::string detail = h5_detail();
    fail(f.name, ": cannot create group '", p, "': ", detail, " (a parent may be a dataset, not a group)");
  }
}

namespace {

// Creates (replacing) attribute `name` on the object at normalized path `p` and writes `data`
// (skipped when the dataspace is empty).
void write_attr(hid_t file, const std::string& file_name, const std::string& p, const std::string& name,
                hid_t type, hid_t space, const void* data) {
  if (!path_exists(file, p)) {
    fail(file_name, ": cannot set attribute '", name, "': no group or dataset '", p,
         "' (write the dataset or create_group() first)", missing_hint(file, p));
  }
  if (name.empty()) fail(file_name, ": attribute on '", p, "' has an empty name (give it a name)");
  htri_t exists = H5Aexists_by_name(file, p.c_str(), name.c_str(), H5P_DEFAULT);
  if (exists > 0 && H5Adelete_by_name(file, p.c_str(), name.c_str(), H5P_DEFAULT) < 0) {
    fail(file_name, ": cannot replace attribute '", name, "' on '", p, "': ", h5_detail());
  }
  H5Id acpl(H5Pcreate(H5P_ATTRIBUTE_CREATE));
  H5Pset_char_encoding(acpl.get(), H5T_CSET_UTF8);
  H5Id attr(
      H5Acreate_by_name(file, p.c_str(), name.c_str(), type, space, acpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid()) {
    std::string detail = h5_detail();
    fail(file_name, ": cannot create attribute '", name, "' on '", p, "': ", detail);
  }
  if (H5Sget_simple_extent_npoints(space) > 0 && H5Awrite(attr.get(), type, data) < 0) {
    std::string detail = h5_detail();
    fail(file_name, ": cannot write attribute '", name, "' on '", p, "': ", detail);
  }
}

H5Id vector_space(size_t n) {
  hsize_t dim = n;
  return H5Id(H5Screate_simple(1, &dim, nullptr));
}

}  // namespace

void H5Writer::set_attr(const std::string& object_path, const std::string& name, const std::string& value) {
  Impl& f = Impl::checked(impl_, "set an attribute");
  const std::string p = normalize(f.name, object_path);
  if (value.find('\0') != std::string::npos) {
    fail(f.name, ": attribute '", name, "' on '", p, "': the string holds a NUL byte (store bytes as uint8)");
  }
  H5Id type(H5Tcopy(H5T_C_S1));
  if (!type.valid() || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0) {
    fail(f.name, ": cannot set up a string type: ", h5_detail());
  }
  H5Id space(H5Screate(H5S_SCALAR));
  const char* s = value.c_str();
  write_attr(f.file.get(), f.name, p, name, type.get(), space.get(), &s);
}

void H5Writer::set_attr(const std::string& object_path, const std::string& name, int64_t value) {
  Impl& f = Impl::checked(impl_, "set an attribute");
  H5Id space(H5Screate(H5S_SCALAR));
  write_attr(f.file.get(), f.name, normalize(f.name, object_path), name, H5T_NATIVE_INT64, space.get(),
             &value);
}

void H5Writer::set_attr(const std::string& object_path, const std::string& name, double value) {
  Impl& f = Impl::checked(impl_, "set an attribute");
  H5Id space(H5Screate(H5S_SCALAR));
  write_attr(f.file.get(), f.name, normalize(f.name, object_path), name, H5T_NATIVE_DOUBLE, space.get(),
             &value);
}

void H5Writer::set_attr(const std::string& object_path, const std::string& name,
                        const std::vector<int64_t>& value) {
  Impl& f = Impl::checked(impl_, "set an attribute");
  H5Id space = vector_space(value.size());
  write_attr(f.file.get(), f.name, normalize(f.name, object_path), name, H5T_NATIVE_INT64, space.get(),
             value.data());
}

void H5Writer::set_attr(const std::string& object_path, const std::string& name,
                        const std::vector<double>& value) {
  Impl& f = Impl::checked(impl_, "set an attribute");
  H5Id space = vector_space(value.size());
  write_attr(f.file.get(), f.name, normalize(f.name, object_path), name, H5T_NATIVE_DOUBLE, space.get(),
             value.data());
}

void H5Writer::flush() {
  Impl& f = Impl::checked(impl_, "flush");
  if (H5Fflush(f.file.get(), H5F_SCOPE_GLOBAL) < 0) {
    std::string detail = h5_detail();
    fail(f.name, ": cannot flush: ", detail, " (check free disk space)");
  }
}

void H5Writer::commit() {
  Impl& f = Impl::checked(impl_, "commit");
  if (!f.close()) {
    std::string detail = h5_detail();
    f.temp.reset();
    fail("cannot write ", f.name, ": closing the file failed: ", detail, " (check free disk space)");
  }
  if (f.temp) f.temp->commit();
}

// ---- extendible datasets ----------------------------------------------------------------------

struct H5Writer::Extendible::State {
  std::shared_ptr<H5Writer::Impl> writer;
  H5Id ds;
  std::string path;  // normalized
  at::ScalarType dtype = at::kFloat;
  std::vector<int64_t> inner;
  int64_t rows = 0;

  ~State() {
    if (!writer || !writer->open) ds.release();  // closed with its file
  }
  H5Writer::Impl& require_open(const char* what) const {
    if (!writer) fail("H5Writer::Extendible: cannot ", what, ": it was moved from");
    if (!writer->open) {
      fail(writer->name, ": cannot ", what, " dataset '", path,
           "': its writer was committed or destroyed (append while the writer is open)");
    }
    return *writer;
  }
  void set_rows(int64_t n, const char* what) {
    std::vector<hsize_t> dims{static_cast<hsize_t>(n)};
    for (int64_t d : inner) dims.push_back(static_cast<hsize_t>(d));
    if (H5Dset_extent(ds.get(), dims.data()) < 0) {
      std::string detail = h5_detail();
      fail(writer->name, ": cannot ", what, " dataset '", path, "' to ", n, " rows: ", detail);
    }
    rows = n;
  }
};

H5Writer::Extendible::Extendible(std::unique_ptr<State> state) : state_(std::move(state)) {}
H5Writer::Extendible::~Extendible() = default;
H5Writer::Extendible::Extendible(Extendible&&) noexcept = default;
H5Writer::Extendible& H5Writer::Extendible::operator=(Extendible&&) noexcept = default;

int64_t H5Writer::Extendible::rows() const { return state_ ? state_->rows : 0; }
at::ScalarType H5Writer::Extendible::dtype() const { return state_->dtype; }
const std::vector<int64_t>& H5Writer::Extendible::inner_shape() const { return state_->inner; }
const std::string& H5Writer::Extendible::path() const { return state_->path; }

void H5Writer::Extendible::append(const at::Tensor& rows) {
  if (!state_) fail("H5Writer::Extendible: cannot append: it was moved from");
  State& s = *state_;
  Impl& f = s.require_open("append to");
  at::Tensor c = to_storage(rows, f.name, s.path);
  bool shape_ok = c.dim() == static_cast<int64_t>(s.inner.size()) + 1;
  for (size_t i = 0; shape_ok && i < s.inner.size(); ++i)
    shape_ok = c.size(static_cast<int64_t>(i) + 1) == s.inner[i];
  if (!shape_ok) {
    std::vector<int64_t> want{-1};
    want.insert(want.end(), s.inner.begin(), s.inner.end());
    fail(f.name, ": cannot append ", shape_str(c.sizes()), " to dataset '", s.path, "': rows must be ",
         shape_str(want), " (n rows of the inner shape given to create_extendible)");
  }
  if (c.scalar_type() != s.dtype) {
    fail(f.name, ": cannot append ", rows.scalar_type(), " rows to dataset '", s.path, "' of ", s.dtype,
         " (convert with .to(at::k", s.dtype, "))");
  }
  const int64_t n = c.size(0);
  if (n == 0) return;
  const int64_t old_rows = s.rows;
  s.set_rows(old_rows + n, "extend");
  std::vector<hsize_t> start(static_cast<size_t>(c.dim()), 0), count(c.sizes().begin(), c.sizes().end());
  start[0] = static_cast<hsize_t>(old_rows);
  H5Id fspace(H5Dget_space(s.ds.get()));
  H5Id mspace(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
  bool ok =
      fspace.valid() && mspace.valid() &&
      H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) >= 0;
  if (ok && c.numel() > 0) {
    ok = H5Dwrite(s.ds.get(), memory_type(s.dtype), mspace.get(), fspace.get(), H5P_DEFAULT, c.data_ptr()) >=
         0;
  }
  if (!ok) {
    std::string detail = h5_detail();
    std::vector<hsize_t> old_dims = count;
    old_dims[0] = static_cast<hsize_t>(old_rows);
    H5Dset_extent(s.ds.get(), old_dims.data());  // best effort: drop the rows not written
    s.rows = old_rows;
    fail(f.name, ": cannot append ", n, " rows to dataset '", s.path, "': ", detail,
         " (check free disk space)");
  }
}

void H5Writer::Extendible::resize(int64_t n) {
  if (!state_) fail("H5Writer::Extendible: cannot resize: it was moved from");
  State& s = *state_;
  Impl& f = s.require_open("resize");
  if (n < 0 || n > s.rows) {
    fail(f.name, ": cannot resize dataset '", s.path, "' to ", n, " rows: it has ", s.rows,
         " (resize only truncates; use append to grow)");
  }
  s.set_rows(n, "resize");
}

H5Writer::Extendible H5Writer::create_extendible(const std::string& path, at::ScalarType dtype,
                                                 std::vector<int64_t> inner_shape, int64_t chunk_rows) {
  Impl& f = Impl::checked(impl_, "create an extendible dataset");
  const std::string p = normalize(f.name, path);
  if (p == "/") fail(f.name, ": cannot create a dataset at '/' (give a dataset name)");
  std::optional<at::ScalarType> stored = storage_dtype(dtype);
  if (!stored) {
    fail(f.name, ": extendible dataset '", p, "': dtype ", dtype,
         " cannot be stored (use float32, float64, int64, int32, uint8, bool, bfloat16 or float16)");
  }
  if (chunk_rows <= 0)
    fail(f.name, ": extendible dataset '", p, "': chunk_rows=", chunk_rows, " must be > 0");
  if (inner_shape.size() + 1 > H5S_MAX_RANK) fail(f.name, ": extendible dataset '", p, "': rank too high");
  for (int64_t d : inner_shape) {
    if (d <= 0) {
      fail(f.name, ": extendible dataset '", p, "': inner shape ", shape_str(inner_shape),
           " must have sizes > 0");
    }
  }
  if (path_exists(f.file.get(), p)) {
    fail(f.name, ": dataset '", p, "' already exists (pick another name, or open_extendible() to resume it)");
  }
  check_parents_are_groups(f.file.get(), f.name, p);
  std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED}, chunk{static_cast<hsize_t>(chunk_rows)};
  hsize_t chunk_bytes = static_cast<hsize_t>(at::elementSize(*stored)) * static_cast<hsize_t>(chunk_rows);
  for (int64_t d : inner_shape) {
    dims.push_back(static_cast<hsize_t>(d));
    maxdims.push_back(static_cast<hsize_t>(d));
    chunk.push_back(static_cast<hsize_t>(d));
    chunk_bytes *= static_cast<hsize_t>(d);
  }
  if (chunk_bytes > kMaxChunkBytes) {
    fail(f.name, ": extendible dataset '", p, "': a chunk of ", chunk_rows, " rows is ", chunk_bytes,
         " bytes, over HDF5's 4 GiB limit (lower chunk_rows)");
  }
  H5Id space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data()));
  H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
  if (!space.valid() || !dcpl.valid() ||
      H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()) < 0 ||
      H5Pset_shuffle(dcpl.get()) < 0 || H5Pset_deflate(dcpl.get(), kGzipLevel) < 0) {
    fail(f.name, ": cannot set up extendible dataset '", p, "': ", h5_detail());
  }
  H5Id lcpl = make_lcpl(f.name);
  H5Id dapl = make_extendible_dapl(chunk_bytes, f.name);
  auto state = std::make_unique<Extendible::State>();
  state->writer = impl_;
  state->ds = H5Id(H5Dcreate2(f.file.get(), p.c_str(), file_type(*stored), space.get(), lcpl.get(),
                              dcpl.get(), dapl.get()));
  if (!state->ds.valid()) {
    std::string detail = h5_detail();
    fail(f.name, ": cannot create extendible dataset '", p, "': ", detail,
         " (a parent may be a dataset, not a group)");
  }
  state->path = p;
  state->dtype = *stored;
  state->inner = std::move(inner_shape);
  return Extendible(std::move(state));
}

H5Writer::Extendible H5Writer::open_extendible(const std::string& path) {
  Impl& f = Impl::checked(impl_, "open an extendible dataset");
  const std::string p = normalize(f.name, path);
  std::vector<int64_t> dims;
  std::vector<hsize_t> maxdims, chunk;
  at::ScalarType dtype;
  {
    H5Id ds = open_dataset(f.file.get(), f.name, p);
    dims = dataset_dims(ds.get(), &maxdims);
    H5Id type(H5Dget_type(ds.get()));
    dtype = read_dtype(type.get(), f.name, p);
    H5Id dcpl(H5Dget_create_plist(ds.get()));
    if (dims.empty() || maxdims[0] != H5S_UNLIMITED || H5Pget_layout(dcpl.get()) != H5D_CHUNKED) {
      fail(f.name, ": dataset '", p,
           "' is not extendible (it was written by write(), not create_extendible(); write to a new name)");
    }
    chunk.resize(dims.size());
    H5Pget_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
  }
  if (!storage_dtype(dtype) || *storage_dtype(dtype) != dtype) {
    fail(f.name, ": extendible dataset '", p, "' holds ", dtype, ", which lminf does not append to");
  }
  hsize_t chunk_bytes = static_cast<hsize_t>(at::elementSize(dtype));
  for (hsize_t c : chunk) chunk_bytes *= c;
  H5Id dapl = make_extendible_dapl(chunk_bytes, f.name);
  auto state = std::make_unique<Extendible::State>();
  state->writer = impl_;
  state->ds = open_dataset(f.file.get(), f.name, p, dapl.get());
  state->path = p;
  state->dtype = dtype;
  state->inner.assign(dims.begin() + 1, dims.end());
  state->rows = dims[0];
  return Extendible(std::move(state));
}

// ---- reader -----------------------------------------------------------------------------------

struct H5Reader::Impl {
  fs::path path;
  std::string name;
  H5Id file;
};

H5Reader::H5Reader(const fs::path& path) : impl_(std::make_unique<Impl>()) {
  silence_hdf5_errors();
  impl_->path = path;
  impl_->name = path.string();
  check_hdf5_file(path, "read");
  H5Id fapl = make_fapl(impl_->name);
  impl_->file = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!impl_->file.valid()) {
    std::string detail = h5_detail();
    fail("cannot read ", impl_->name, ": ", detail, " (the file may be truncated or still being written)");
  }
}

H5Reader::~H5Reader() = default;
H5Reader::H5Reader(H5Reader&&) noexcept = default;
H5Reader& H5Reader::operator=(H5Reader&&) noexcept = default;

const fs::path& H5Reader::path() const { return impl_->path; }

bool H5Reader::exists(const std::string& path) const {
  return path_exists(impl_->file.get(), normalize(impl_->name, path));
}

std::vector<int64_t> H5Reader::shape(const std::string& path) const {
  const std::string p = normalize(impl_->name, path);
  H5Id ds = open_dataset(impl_->file.get(), impl_->name, p);
  return dataset_dims(ds.get());
}

at::Tensor H5Reader::read(const std::string& path) const {
  const std::string p = normalize(impl_->name, path);
  H5Id ds = open_dataset(impl_->file.get(), impl_->name, p);
  H5Id type(H5Dget_type(ds.get()));
  at::ScalarType dtype = read_dtype(type.get(), impl_->name, p);
  at::Tensor out = at::empty(dataset_dims(ds.get()), at::TensorOptions().dtype(dtype));
  if (out.numel() > 0 &&
      H5Dread(ds.get(), memory_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()) < 0) {
    std::string detail = h5_detail();
    fail(impl_->name, ": cannot read dataset '", p, "': ", detail, " (the file may be damaged)");
  }
  return out;
}

at::Tensor H5Reader::read_rows(const std::string& path, int64_t start, int64_t count) const {
  const std::string p = normalize(impl_->name, path);
  H5Id ds = open_dataset(impl_->file.get(), impl_->name, p);
  H5Id type(H5Dget_type(ds.get()));
  at::ScalarType dtype = read_dtype(type.get(), impl_->name, p);
  std::vector<int64_t> dims = dataset_dims(ds.get());
  if (dims.empty()) fail(impl_->name, ": cannot read rows of '", p, "': it is a scalar (use read())");
  if (start < 0 || count < 0 || start > dims[0] - count) {
    fail(impl_->name, ": cannot read rows [", start, ", ", start + count, ") of '", p, "': it has ", dims[0],
         " rows");
  }
  std::vector<int64_t> out_shape = dims;
  out_shape[0] = count;
  at::Tensor out = at::empty(out_shape, at::TensorOptions().dtype(dtype));
  if (out.numel() == 0) return out;
  std::vector<hsize_t> offset(dims.size(), 0), extent(out_shape.begin(), out_shape.end());
  offset[0] = static_cast<hsize_t>(start);
  H5Id fspace(H5Dget_space(ds.get()));
  H5Id mspace(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr));
  if (!fspace.valid() || !mspace.valid() ||
      H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, offset.data(), nullptr, extent.data(), nullptr) < 0 ||
      H5Dread(ds.get(), memory_type(dtype), mspace.get(), fspace.get(), H5P_DEFAULT, out.data_ptr()) < 0) {
    std::string detail = h5_detail();
    fail(impl_->name, ": cannot read rows of dataset '", p, "': ", detail, " (the file may be damaged)");
  }
  return out;
}

namespace {

// Opens attribute `name` of the object at normalized path `p`.
H5Id open_attr(hid_t file, const std::string& file_name, const std::string& p, const std::string& name) {
  open_object(file, file_name, p);  // errors if the object is missing
  htri_t exists = H5Aexists_by_name(file, p.c_str(), name.c_str(), H5P_DEFAULT);
  if (exists <= 0) {
    fail(file_name, ": '", p, "' has no attribute '", name, "' (was the file written by an older lminf?)");
  }
  H5Id attr(H5Aopen_by_name(file, p.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid()) fail(file_name, ": cannot open attribute '", name, "' on '", p, "': ", h5_detail());
  return attr;
}

// Reads a numeric attribute of any rank as `mem_type` values; `want` names the expected kind.
template <class T>
std::vector<T> read_numeric_attr(hid_t file, const std::string& file_name, const std::string& p,
                                 const std::string& name, hid_t mem_type, bool allow_float,
                                 const char* want) {
  H5Id attr = open_attr(file, file_name, p, name);
  H5Id type(H5Aget_type(attr.get()));
  H5T_class_t cls = H5Tget_class(type.get());
  if (!(cls == H5T_INTEGER || (allow_float && cls == H5T_FLOAT))) {
    fail(file_name, ": attribute '", name, "' on '", p, "' is not ", want,
         " (read it with the matching attr_*)");
  }
  H5Id space(H5Aget_space(attr.get()));
  hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<T> out(static_cast<size_t>(std::max<hssize_t>(n, 0)));
  if (!out.empty() && H5Aread(attr.get(), mem_type, out.data()) < 0) {
    std::string detail = h5_detail();
    fail(file_name, ": cannot read attribute '", name, "' on '", p, "': ", detail);
  }
  return out;
}

}  // namespace

bool H5Reader::has_attr(const std::string& object_path, const std::string& name) const {
  const std::string p = normalize(impl_->name, object_path);
  open_object(impl_->file.get(), impl_->name, p);
  return H5Aexists_by_name(impl_->file.get(), p.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::string H5Reader::attr_string(const std::string& object_path, const std::string& name) const {
  const std::string p = normalize(impl_->name, object_path);
  H5Id attr = open_attr(impl_->file.get(), impl_->name, p, name);
  H5Id type(H5Aget_type(attr.get()));
  if (H5Tget_class(type.get()) != H5T_STRING) {
    fail(impl_->name, ": attribute '", name, "' on '", p,
         "' is not a string (read it with the matching attr_*)");
  }
  H5Id space(H5Aget_space(attr.get()));
  if (H5Sget_simple_extent_npoints(space.get()) != 1) {
    fail(impl_->name, ": attribute '", name, "' on '", p, "' is not a single string");
  }
  H5Id mem(H5Tcopy(H5T_C_S1));
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* s = nullptr;
    if (H5Aread(attr.get(), mem.get(), &s) < 0) {
      std::string detail = h5_detail();
      fail(impl_->name, ": cannot read attribute '", name, "' on '", p, "': ", detail);
    }
    std::string out = s ? s : "";
    H5free_memory(s);
    return out;
  }
  size_t size = H5Tget_size(type.get());
  std::string out(size, '\0');
  H5Tset_size(mem.get(), size);
  H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
  H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
  if (H5Aread(attr.get(), mem.get(), out.data()) < 0) {
    std::string detail = h5_detail();
    fail(impl_->name, ": cannot read attribute '", name, "' on '", p, "': ", detail);
  }
  out.resize(out.find('\0') == std::string::npos ? out.size() : out.find('\0'));
  return out;
}

int64_t H5Reader::attr_int(const std::string& object_path, const std::string& name) const {
  const std::string p = normalize(impl_->name, object_path);
  auto v = read_numeric_attr<int64_t>(impl_->file.get(), impl_->name, p, name, H5T_NATIVE_INT64, false,
                                      "an integer");
  if (v.size() != 1)
    fail(impl_->name, ": attribute '", name, "' on '", p, "' holds ", v.size(),
         " values, not 1 (use attr_ints)");
  return v[0];
}

double H5Reader::attr_double(const std::string& object_path, const std::string& name) const {
  const std::string p = normalize(impl_->name, object_path);
  auto v =
      read_numeric_attr<double>(impl_->file.get(), impl_->name, p, name, H5T_NATIVE_DOUBLE, true, "a number");
  if (v.size() != 1)
    fail(impl_->name, ": attribute '", name, "' on '", p, "' holds ", v.size(),
         " values, not 1 (use attr_doubles)");
  return v[0];
}

std::vector<int64_t> H5Reader::attr_ints(const std::string& object_path, const std::string& name) const {
  return read_numeric_attr<int64_t>(impl_->file.get(), impl_->name, normalize(impl_->name, object_path), name,
                                    H5T_NATIVE_INT64, false, "integers");
}

std::vector<double> H5Reader::attr_doubles(const std::string& object_path, const std::string& name) const {
  return read_numeric_attr<double>(impl_->file.get(), impl_->name, normalize(impl_->name, object_path), name,
                                   H5T_NATIVE_DOUBLE, true, "numbers");
}

std::vector<std::string> H5Reader::list(const std::string& group_path) const {
  const std::string p = normalize(impl_->name, group_path);
  H5Id obj = open_object(impl_->file.get(), impl_->name, p);
  if (H5Iget_type(obj.get()) != H5I_GROUP) {
    fail(impl_->name, ": cannot list '", p, "': it is a dataset, not a group");
  }
  return list_group(obj.get());
}

}  // namespace lminf
