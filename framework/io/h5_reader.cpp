#include "framework/io/h5_file.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "framework/core/error.h"
#include "framework/core/format.h"
#include "framework/core/process_memory.h"
#include "framework/core/utf8.h"
#include "framework/io/atomic_file.h"
#include "framework/io/h5_internal.h"

namespace lminf {
namespace fs = std::filesystem;
using namespace h5_internal;

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

namespace {

// Before allocating what a dataset declares: its element count must fit in memory, and must be
// plausible for the bytes the file stores for it (gzip shrinks zeros about 1000-fold, so a dataset
// that stores far less than a 4096th of what it declares is damaged or was made to exhaust memory).
void check_declared_size(hid_t ds, const std::string& file_name, const std::string& p,
                         const std::vector<int64_t>& dims, at::ScalarType dtype, int64_t rows) {
  double elements = 1;
  for (int64_t d : dims) elements *= static_cast<double>(d);
  const double whole = elements * static_cast<double>(c10::elementSize(dtype));
  const double wanted = dims.empty() || dims[0] == 0 ? whole : whole / static_cast<double>(dims[0]) * static_cast<double>(rows);
  const double stored = static_cast<double>(H5Dget_storage_size(ds));
  if (whole > std::max(64.0 * 1024 * 1024, 4096.0 * stored))
    fail(file_name, ": dataset '", p, "' declares shape ", shape_str(dims), " (", format_bytes(whole), ") but the file stores ",
         format_bytes(stored), " for it: the file is damaged or was not written by lminf");
  const int64_t available = available_memory_bytes();
  if (available > 0 && wanted > static_cast<double>(available))
    fail(file_name, ": dataset '", p, "' of shape ", shape_str(dims), " needs ", format_bytes(wanted),
         " to read, more than the ", format_bytes(static_cast<double>(available)), " of memory this process may use");
}

}  // namespace

at::Tensor H5Reader::read(const std::string& path) const {
  const std::string p = normalize(impl_->name, path);
  H5Id ds = open_dataset(impl_->file.get(), impl_->name, p);
  H5Id type(H5Dget_type(ds.get()));
  at::ScalarType dtype = read_dtype(type.get(), impl_->name, p);
  const std::vector<int64_t> dims = dataset_dims(ds.get());
  check_declared_size(ds.get(), impl_->name, p, dims, dtype, dims.empty() ? 1 : dims[0]);
  at::Tensor out = at::empty(dims, at::TensorOptions().dtype(dtype));
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
  check_declared_size(ds.get(), impl_->name, p, dims, dtype, count);
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
    check_utf8(out, impl_->name + ": attribute '" + name + "' on '" + p + "'");
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
  // Strings are UTF-8 (the writer's and h5py's encoding): other bytes would fail later, far from the
  // file, e.g. when a label goes into summary.json.
  check_utf8(out, impl_->name + ": attribute '" + name + "' on '" + p + "'");
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
