#include "framework/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/core/format.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lminf reads safetensors data in place and needs a little-endian host"
#endif

namespace lminf {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // the limit of the reference reader
constexpr const char* kFixCorrupt = "the file is truncated or corrupt (re-download or re-save it)";

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"F64", at::kDouble},
    {"I64", at::kLong},  {"I32", at::kInt},  {"I16", at::kShort},     {"I8", at::kChar},
    {"U8", at::kByte},   {"BOOL", at::kBool},
};

std::string supported_list() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

bool is_floating(at::ScalarType t) {
  return t == at::kFloat || t == at::kHalf || t == at::kBFloat16 || t == at::kDouble;
}

size_t levenshtein(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Parses one header entry; `where` is "FILE: tensor 'NAME'".
TensorInfo parse_entry(const std::string& where, const json& e, uint64_t data_size) {
  if (!e.is_object()) fail(where, " header entry is not a JSON object: ", kFixCorrupt);
  TensorInfo info;

  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) fail(where, " has no \"dtype\" string: ", kFixCorrupt);
  info.dtype = dt->get<std::string>();
  if (!dtype_from_safetensors(info.dtype, &info.scalar_type))
    fail(where, " has dtype '", info.dtype, "', which lminf does not read (supported: ",
         supported_list(), "; re-save the checkpoint in F32, BF16 or F16)");

  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) fail(where, " has no \"shape\" array: ", kFixCorrupt);
  uint64_t numel = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned())  // nlohmann parses non-negative integers as unsigned
      fail(where, " has shape ", sh->dump(), " with an entry that is not a non-negative integer: ",
           kFixCorrupt);
    uint64_t v = d.get<uint64_t>();
    if (v > (uint64_t(1) << 62) || __builtin_mul_overflow(numel, v, &numel))
      fail(where, " has shape ", sh->dump(), " whose element count overflows: ", kFixCorrupt);
    info.shape.push_back(static_cast<int64_t>(v));
  }

  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    fail(where, " has data_offsets ", off == e.end() ? std::string("(missing)") : off->dump(),
         ", expected [begin, end] with non-negative integers: ", kFixCorrupt);
  info.begin = (*off)[0].get<uint64_t>();
  info.end = (*off)[1].get<uint64_t>();
  if (info.begin > info.end)
    fail(where, " has data_offsets [", info.begin, ", ", info.end, "] with begin > end: ", kFixCorrupt);
  if (info.end > data_size)
    fail(where, " data_offsets [", info.begin, ", ", info.end,
         "] extend past the end of the file (data is ", data_size, " bytes): ", kFixCorrupt);
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(c10::elementSize(info.scalar_type)), &nbytes) ||
      nbytes != info.end - info.begin)
    fail(where, " data_offsets [", info.begin, ", ", info.end, "] hold ", info.end - info.begin,
         " bytes but dtype ", info.dtype, " and shape ", shape_str(info.shape), " need ", numel, " x ",
         c10::elementSize(info.scalar_type), " bytes: ", kFixCorrupt);
  return info;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool dtype_from_safetensors(const std::string& name, at::ScalarType* out) {
  for (const auto& d : kDtypes)
    if (name == d.name) {
      *out = d.type;
      return true;
    }
  return false;
}

std::string safetensors_dtype_name(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (t == d.type) return d.name;
  fail("safetensors cannot store dtype ", c10::toString(t), " (supported: ", supported_list(),
       "; convert the tensor with .to() first)");
}

std::vector<std::string> closest_names(const std::string& name,
                                       const std::vector<std::string>& candidates, size_t max_n) {
  std::vector<std::pair<size_t, std::string>> scored;
  scored.reserve(candidates.size());
  for (const auto& c : candidates) scored.emplace_back(levenshtein(name, c), c);
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < max_n; ++i) out.push_back(scored[i].second);
  return out;
}

// --- SafetensorsFile ----------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  const std::string p = path.string();
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(p, ": cannot open (", std::strerror(errno), "; check the path and its permissions)");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail(p, ": cannot stat (", std::strerror(e), ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(p, ": not a regular file (pass a .safetensors file)");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(p, ": file is ", size, " bytes, shorter than the 8-byte safetensors header length: ", kFixCorrupt);
  }
  map_ = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    fail(p, ": mmap failed (", std::strerror(map_errno), ")");
  }
  map_size_ = size;

  try {
    const auto* bytes = static_cast<const uint8_t*>(map_);
    uint64_t n = 0;
    std::memcpy(&n, bytes, 8);  // little-endian host (checked at compile time)
    if (n > size - 8)
      fail(p, ": header length ", n, " is larger than the file (", size,
           " bytes): the file is truncated or not a safetensors file (re-download or re-save it)");
    if (n > kMaxHeaderBytes)
      fail(p, ": header length ", n, " exceeds ", kMaxHeaderBytes,
           " bytes: not a safetensors file or corrupt (re-download or re-save it)");
    data_ = bytes + 8 + n;
    data_size_ = size - 8 - n;

    std::string error;
    std::optional<json> parsed =
        try_parse_json(std::string_view(reinterpret_cast<const char*>(bytes + 8), static_cast<size_t>(n)), error);
    if (!parsed) fail(p, ": header is not valid JSON (", error, "): ", kFixCorrupt);
    const json header = std::move(*parsed);
    if (!header.is_object()) fail(p, ": header is not a JSON object: ", kFixCorrupt);

    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (!it->is_object()) fail(p, ": \"__metadata__\" is not a JSON object: ", kFixCorrupt);
        for (auto m = it->begin(); m != it->end(); ++m) {
          if (!m->is_string())
            fail(p, ": \"__metadata__\" value for '", m.key(), "' is not a string: ", kFixCorrupt);
          metadata_[m.key()] = m->get<std::string>();
        }
        continue;
      }
      infos_[it.key()] = parse_entry(p + ": tensor '" + it.key() + "'", *it, data_size_);
    }

    // Non-empty byte ranges must not overlap (empty tensors may sit anywhere).
    std::vector<std::pair<const std::string*, const TensorInfo*>> by_begin;
    for (const auto& [name, info] : infos_)
      if (info.end > info.begin) by_begin.emplace_back(&name, &info);
    std::sort(by_begin.begin(), by_begin.end(),
              [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
    for (size_t i = 1; i < by_begin.size(); ++i) {
      const auto& [pn, pi] = by_begin[i - 1];
      const auto& [cn, ci] = by_begin[i];
      if (ci->begin < pi->end)
        fail(p, ": tensors '", *pn, "' [", pi->begin, ", ", pi->end, "] and '", *cn, "' [", ci->begin,
             ", ", ci->end, "] have overlapping data_offsets: ", kFixCorrupt);
    }
  } catch (...) {
    unmap();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

void SafetensorsFile::unmap() {
  if (map_) ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
  data_ = nullptr;
  data_size_ = 0;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)),
      map_(o.map_),
      map_size_(o.map_size_),
      data_(o.data_),
      data_size_(o.data_size_),
      infos_(std::move(o.infos_)),
      metadata_(std::move(o.metadata_)),
      bytes_read_(o.bytes_read_) {
  o.map_ = nullptr;
  o.map_size_ = 0;
  o.data_ = nullptr;
  o.data_size_ = 0;
}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  if (this != &o) {
    unmap();
    path_ = std::move(o.path_);
    map_ = o.map_;
    map_size_ = o.map_size_;
    data_ = o.data_;
    data_size_ = o.data_size_;
    infos_ = std::move(o.infos_);
    metadata_ = std::move(o.metadata_);
    bytes_read_ = o.bytes_read_;
    o.map_ = nullptr;
    o.map_size_ = 0;
    o.data_ = nullptr;
    o.data_size_ = 0;
  }
  return *this;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(infos_.size());
  for (const auto& kv : infos_) out.push_back(kv.first);
  return out;  // std::map keeps them sorted
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = infos_.find(name);
  if (it != infos_.end()) return it->second;
  std::ostringstream os;
  for (const auto& c : closest_names(name, names())) os << (os.tellp() ? ", '" : "'") << c << "'";
  fail(path_.string(), ": no tensor '", name, "' (", infos_.size(), " tensors; closest: ",
       infos_.empty() ? std::string("none") : os.str(),
       "; check the tensor name against the model architecture)");
}

namespace {
void check_convertible(const std::string& where, const TensorInfo& info, at::ScalarType to) {
  if (is_floating(info.scalar_type) && !is_floating(to))
    fail(where, " is ", info.dtype, " and cannot be loaded as ", c10::toString(to),
         " (load floating-point weights as float32, float16, bfloat16 or float64)");
  if (!is_floating(to) && !c10::isIntegralType(to, /*includeBool=*/true))
    fail(where, " cannot be loaded as ", c10::toString(to),
         " (load it as a floating-point or integer dtype)");
}
}  // namespace

at::Tensor SafetensorsFile::load(const std::string& name, at::ScalarType dtype) {
  const TensorInfo& ti = info(name);
  check_convertible(path_.string() + ": tensor '" + name + "'", ti, dtype);
  // Copy into an owned, aligned buffer first: the file offset has no alignment guarantee.
  at::Tensor raw = at::empty(ti.shape, at::TensorOptions().dtype(ti.scalar_type));
  const uint64_t nbytes = ti.end - ti.begin;
  if (nbytes) std::memcpy(raw.data_ptr(), data_ + ti.begin, nbytes);
  bytes_read_ += nbytes;
  return dtype == ti.scalar_type ? raw : raw.to(dtype);
}

at::Tensor SafetensorsFile::load_slice(const std::string& name, int64_t dim, int64_t start,
                                       int64_t length, at::ScalarType dtype) {
  const TensorInfo& ti = info(name);
  const std::string where = path_.string() + ": tensor '" + name + "'";
  check_convertible(where, ti, dtype);
  const int64_t rank = static_cast<int64_t>(ti.shape.size());
  if (rank == 0) fail(where, " is a scalar and cannot be sliced (use load())");
  if (dim < -rank || dim >= rank)
    fail(where, " of shape ", shape_str(ti.shape), " has no dim ", dim, " (use a dim in [0, ", rank, "))");
  if (dim < 0) dim += rank;
  if (start < 0 || length < 0 || start + length > ti.shape[dim])
    fail(where, " of shape ", shape_str(ti.shape), ": slice [", start, ", ", start + length,
         ") along dim ", dim, " is outside [0, ", ti.shape[dim],
         "] (pass start >= 0 and start + length <= ", ti.shape[dim], ")");

  std::vector<int64_t> out_shape = ti.shape;
  out_shape[dim] = length;
  at::Tensor raw = at::empty(out_shape, at::TensorOptions().dtype(ti.scalar_type));

  // View the tensor as [outer, shape[dim], inner]: each of the `outer` blocks contributes one
  // contiguous run of length * inner elements.
  const uint64_t item = c10::elementSize(ti.scalar_type);
  uint64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < dim; ++i) outer *= static_cast<uint64_t>(ti.shape[i]);
  for (int64_t i = dim + 1; i < rank; ++i) inner *= static_cast<uint64_t>(ti.shape[i]);
  const uint64_t run = static_cast<uint64_t>(length) * inner * item;
  const uint64_t src_stride = static_cast<uint64_t>(ti.shape[dim]) * inner * item;
  const uint8_t* src = data_ + ti.begin + static_cast<uint64_t>(start) * inner * item;
  auto* dst = static_cast<uint8_t*>(raw.data_ptr());
  if (run) {
    for (uint64_t o = 0; o < outer; ++o) std::memcpy(dst + o * run, src + o * src_stride, run);
  }
  bytes_read_ += outer * run;
  return dtype == ti.scalar_type ? raw : raw.to(dtype);
}

// --- writer -------------------------------------------------------------------------------------

void write_safetensors(const fs::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string p = path.string();
  std::vector<at::Tensor> cpu;
  cpu.reserve(tensors.size());
  json header = json::object();
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__")
      fail(p, ": cannot write a tensor named '", name, "' (choose another name)");
    if (header.contains(name)) fail(p, ": tensor '", name, "' given twice (tensor names must be unique)");
    if (!t.defined()) fail(p, ": tensor '", name, "' is undefined (pass a tensor)");
    std::string dt;
    try {
      dt = safetensors_dtype_name(t.scalar_type());
    } catch (const Error& e) {
      fail(p, ": tensor '", name, "': ", e.what());
    }
    at::Tensor c = t.to(at::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", dt}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    cpu.push_back(std::move(c));
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // data start 8-byte aligned
  const uint64_t n = text.size();

  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(p, ": cannot create ", tmp.string(), " (", std::strerror(errno), "; check the folder exists and is writable)");
  bool ok = std::fwrite(&n, 8, 1, f) == 1 && std::fwrite(text.data(), 1, n, f) == n;
  for (size_t i = 0; ok && i < cpu.size(); ++i) {
    const size_t nbytes = cpu[i].numel() * cpu[i].element_size();
    if (nbytes) ok = std::fwrite(cpu[i].data_ptr(), 1, nbytes, f) == nbytes;
  }
  int err = ok ? 0 : errno;
  if (ok && (std::fflush(f) != 0 || ::fsync(::fileno(f)) != 0)) {
    ok = false;
    err = errno;
  }
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  std::error_code ec;
  if (!ok) {
    fs::remove(tmp, ec);
    fail(p, ": write failed (", std::strerror(err), "; check free disk space)");
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    fail(p, ": cannot rename ", tmp.string(), " into place (", why, "; check the folder is writable)");
  }
}

}  // namespace lminf
