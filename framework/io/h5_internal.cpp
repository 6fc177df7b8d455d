#include "framework/io/h5_internal.h"

#include <algorithm>

#include "framework/io/atomic_file.h"
#include "framework/core/error.h"
#include "framework/core/format.h"

namespace lminf::h5_internal {
// ---- handles ----------------------------------------------------------------------------------

herr_t close_id(hid_t id) {
  using Close = herr_t (*)(hid_t);
  static const std::pair<H5I_type_t, Close> closers[] = {
      {H5I_FILE, H5Fclose},     {H5I_GROUP, H5Gclose},    {H5I_DATASET, H5Dclose},       {H5I_DATASPACE, H5Sclose},
      {H5I_DATATYPE, H5Tclose}, {H5I_ATTR, H5Aclose},     {H5I_GENPROP_LST, H5Pclose}};
  const H5I_type_t type = H5Iget_type(id);
  for (const auto& [t, close] : closers)
    if (t == type) return close(id);
  return -1;  // invalid (e.g. closed with its file): nothing to do
}


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

H5Id open_dataset(hid_t file, const std::string& file_name, const std::string& p, hid_t dapl) {
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

namespace {
// A dtype's HDF5 types in the file (little-endian, fixed) and in memory (native). The H5T_* names are
// library globals set by H5open, so the table is built per call.
struct H5Types {
  hid_t file = H5I_INVALID_HID;    // H5I_INVALID_HID: never stored as this dtype
  hid_t memory = H5I_INVALID_HID;  // H5I_INVALID_HID: not readable into this dtype
};
H5Types h5_types(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return {H5T_IEEE_F32LE, H5T_NATIVE_FLOAT};
    case at::kDouble: return {H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE};
    case at::kLong: return {H5T_STD_I64LE, H5T_NATIVE_INT64};
    case at::kInt: return {H5T_STD_I32LE, H5T_NATIVE_INT32};
    case at::kShort: return {H5I_INVALID_HID, H5T_NATIVE_INT16};
    case at::kChar: return {H5I_INVALID_HID, H5T_NATIVE_INT8};
    case at::kByte: return {H5T_STD_U8LE, H5T_NATIVE_UINT8};
    default: return {};
  }
}
}  // namespace

hid_t file_type(at::ScalarType stored) { return h5_types(stored).file; }

hid_t memory_type(at::ScalarType s) { return h5_types(s).memory; }

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

std::vector<int64_t> dataset_dims(hid_t ds, std::vector<hsize_t>* maxdims) {
  H5Id space(H5Dget_space(ds));
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) return {};
  std::vector<hsize_t> dims(static_cast<size_t>(rank)), maxd(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), maxd.data());
  if (maxdims) *maxdims = maxd;
  return std::vector<int64_t>(dims.begin(), dims.end());
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

}  // namespace lminf::h5_internal
