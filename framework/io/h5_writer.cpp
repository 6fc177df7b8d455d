#include "framework/io/h5_file.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "framework/core/error.h"
#include "framework/core/format.h"
#include "framework/io/atomic_file.h"
#include "framework/io/h5_internal.h"

namespace lminf {
namespace fs = std::filesystem;
using namespace h5_internal;

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
  set_vector_attr(object_path, name, H5T_NATIVE_INT64, value.data(), value.size());
}

void H5Writer::set_attr(const std::string& object_path, const std::string& name,
                        const std::vector<double>& value) {
  set_vector_attr(object_path, name, H5T_NATIVE_DOUBLE, value.data(), value.size());
}

void H5Writer::set_vector_attr(const std::string& object_path, const std::string& name, int64_t memory_type,
                               const void* data, size_t n) {
  Impl& f = Impl::checked(impl_, "set an attribute");
  H5Id space = vector_space(n);
  write_attr(f.file.get(), f.name, normalize(f.name, object_path), name, static_cast<hid_t>(memory_type),
             space.get(), data);
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

}  // namespace lminf
