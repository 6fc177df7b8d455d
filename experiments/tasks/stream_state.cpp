#include "experiments/tasks/stream_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <utility>

#include "framework/core/error.h"
#include "framework/core/format.h"

namespace lminf {

namespace {

std::string layer_path(int64_t l, const char* what) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "cache/layer_%03lld/%s", static_cast<long long>(l), what);
  return buf;
}

double mean_or_nan(double sum, int64_t n) {
  return n > 0 ? sum / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

// A bucket table of results.json: rows {start, end, tokens, mean_nll, ppl} of the non-empty entries.
template <class Start, class End>
nlohmann::json bucket_table(const std::vector<double>& s, const std::vector<int64_t>& c, Start start, End end) {
  nlohmann::json t = nlohmann::json::array();
  for (size_t i = 0; i < s.size(); ++i) {
    if (c[i] == 0) continue;
    const double m = s[i] / static_cast<double>(c[i]);
    t.push_back({{"start", start(i)}, {"end", end(i)}, {"tokens", c[i]}, {"mean_nll", m}, {"ppl", std::exp(m)}});
  }
  return t;
}

}  // namespace

void StreamPoint::broadcast(Communicator& world) {
  std::vector<int64_t> values;
  each_field([&](auto& x) { values.push_back(static_cast<int64_t>(x)); });
  at::Tensor t = at::tensor(values, at::kLong);
  world.broadcast(t, 0);
  auto a = t.accessor<int64_t, 1>();
  int64_t i = 0;
  each_field([&](auto& x) { x = static_cast<std::decay_t<decltype(x)>>(a[i++]); });
}

void StreamPoint::save(H5Writer& st) const {
  st.set_attr("/", "tokens", tokens);
  st.set_attr("/", "next_token", next_token);
  st.set_attr("/", "ended", ended ? 1 : 0);
  st.set_attr("/", "cursor", cursor.to_vector());
}

StreamPoint StreamPoint::load(const H5Reader& st, const std::string& state_path) {
  StreamPoint p;
  p.resume = true;
  p.tokens = st.attr_int("/", "tokens");
  p.cursor = StreamCursor::from_vector(st.attr_ints("/", "cursor"));
  p.next_token = st.attr_int("/", "next_token");
  p.ended = st.attr_int("/", "ended") != 0;
  if (p.cursor.position != p.tokens + 1)
    fail(state_path, ": stream position ", p.cursor.position, " does not follow ", p.tokens,
         " tokens (a damaged state; set output.overwrite: true to start over)");
  return p;
}

void RunningNll::add(int64_t first_position, const float* nll, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = first_position + i;
    const double x = nll[i];
    sum += x;
    ++tokens;
    size_t k = 0;
    while ((int64_t{2} << k) <= p) ++k;
    if (log_sum.size() <= k) {
      log_sum.resize(k + 1, 0.0);
      log_count.resize(k + 1, 0);
    }
    log_sum[k] += x;
    ++log_count[k];
    if (segment > 0) {
      const size_t j = static_cast<size_t>(p / segment);
      if (seg_sum.size() <= j) {
        seg_sum.resize(j + 1, 0.0);
        seg_count.resize(j + 1, 0);
      }
      seg_sum[j] += x;
      ++seg_count[j];
    }
  }
}

double RunningNll::mean() const { return mean_or_nan(sum, tokens); }

nlohmann::json RunningNll::to_json() const {
  nlohmann::json j;
  j["tokens"] = tokens;
  j["mean_nll"] = mean();
  j["ppl"] = std::exp(j["mean_nll"].get<double>());
  j["log2_buckets"] = bucket_table(log_sum, log_count, [](size_t k) { return int64_t{1} << k; },
                                   [](size_t k) { return int64_t{2} << k; });
  const int64_t w = segment;
  j["segment"] = segment;
  j["segments"] = bucket_table(seg_sum, seg_count, [w](size_t i) { return static_cast<int64_t>(i) * w; },
                               [w](size_t i) { return static_cast<int64_t>(i + 1) * w; });
  return j;
}

void RunningNll::save(H5Writer& h5) const {
  h5.set_attr("/", "nll_tokens", tokens);
  h5.set_attr("/", "nll_sum", sum);
  if (!log_sum.empty()) {
    h5.set_attr("/", "log2_sum", log_sum);
    h5.set_attr("/", "log2_count", log_count);
  }
  if (!seg_sum.empty()) {
    h5.set_attr("/", "segment_sum", seg_sum);
    h5.set_attr("/", "segment_count", seg_count);
  }
}

void RunningNll::load(const H5Reader& h5) {
  tokens = h5.attr_int("/", "nll_tokens");
  sum = h5.attr_double("/", "nll_sum");
  if (h5.has_attr("/", "log2_sum")) {
    log_sum = h5.attr_doubles("/", "log2_sum");
    log_count = h5.attr_ints("/", "log2_count");
  }
  if (h5.has_attr("/", "segment_sum")) {
    seg_sum = h5.attr_doubles("/", "segment_sum");
    seg_count = h5.attr_ints("/", "segment_count");
  }
  // Sums and counts are indexed together by add(): a state that disagrees would be read out of bounds.
  const auto negative = [](const std::vector<int64_t>& v) { return std::any_of(v.begin(), v.end(), [](int64_t c) { return c < 0; }); };
  if (tokens < 0 || log_sum.size() != log_count.size() || seg_sum.size() != seg_count.size() || negative(log_count) ||
      negative(seg_count))
    fail(h5.path().string(), ": nll_tokens (", tokens, "), log2_sum / log2_count (", log_sum.size(), " / ",
         log_count.size(), " entries) and segment_sum / segment_count (", seg_sum.size(), " / ", seg_count.size(),
         " entries) must agree, counts >= 0 (a damaged state; set output.overwrite: true to start over)");
}

void save_cache_shards(Communicator& world, KVCache& cache, int64_t n_layer, H5Writer* st) {
  for (int64_t l = 0; l < n_layer && cache.size() > 0; ++l) {
    LayerCache& lc = cache.layer(l);
    at::Tensor k = world.all_gather(lc.keys().to(at::kCPU).contiguous().unsqueeze(0), 0);  // [tp, B, Hkv_local, S, D]
    at::Tensor v = world.all_gather(lc.values().to(at::kCPU).contiguous().unsqueeze(0), 0);
    if (st) {
      st->write(layer_path(l, "k"), k);
      st->write(layer_path(l, "v"), v);
    }
    if (lc.scores().defined()) {  // an evicting policy's scores (H2O): [tp, B, Hkv_local, S, 1]
      at::Tensor s = world.all_gather(lc.scores().to(at::kCPU).contiguous().unsqueeze(0).unsqueeze(-1), 0);
      if (st) st->write(layer_path(l, "score"), s);
    }
  }
}

void restore_cache_shards(Communicator& world, KVCache& cache, int64_t n_layer, const H5Reader* st,
                          const std::string& state_path, at::Device device, at::ScalarType dtype) {
  const int tp = world.size(), tp_rank = world.rank();
  at::Tensor entries = at::zeros({1}, at::kLong);
  if (st) {
    if (st->attr_int("/", "tensor_parallel") != tp)
      fail(state_path, ": written with tensor_parallel ", st->attr_int("/", "tensor_parallel"), ", not ", tp);
    entries.fill_(st->attr_int("/", "cache_entries"));
  }
  world.broadcast(entries, 0);
  // Rank 0's [tp, B, Hkv_local, S, D] tensor on every rank (float32: bfloat16 is stored as float32).
  auto from_root = [&](const std::string& path, at::ScalarType as) {
    at::Tensor full, shape = at::zeros({5}, at::kLong);
    if (st) {
      full = st->read(path).to(at::kFloat).contiguous();
      if (full.dim() != 5 || full.size(0) != tp || full.size(3) != entries.item<int64_t>())
        fail(state_path, ": ", path, " has shape ", shape_str(full.sizes()), ", expected [", tp, ", batch, kv_heads, ",
             entries.item<int64_t>(), " (cache_entries), head_dim] (a damaged state; set output.overwrite: true to start "
             "over)");
      shape = at::tensor(full.sizes().vec(), at::kLong);
    }
    world.broadcast(shape, 0);
    if (!st) full = at::empty(std::vector<int64_t>(shape.data_ptr<int64_t>(), shape.data_ptr<int64_t>() + 5), at::kFloat);
    world.broadcast(full, 0);
    return full[tp_rank].to(device, as);
  };
  if (entries.item<int64_t>() == 0) return;
  for (int64_t l = 0; l < n_layer; ++l) {
    at::Tensor k = from_root(layer_path(l, "k"), dtype), v = from_root(layer_path(l, "v"), dtype);
    if (!k.sizes().equals(v.sizes()))
      fail(state_path, ": ", layer_path(l, "k"), " and ", layer_path(l, "v"), " differ in shape (", shape_str(k.sizes()),
           ", ", shape_str(v.sizes()), "): a damaged state; set output.overwrite: true to start over");
    cache.layer(l).append(k, v);
    at::Tensor has_score = at::zeros({1}, at::kLong);
    if (st && st->exists(layer_path(l, "score"))) has_score.fill_(1);
    world.broadcast(has_score, 0);
    if (has_score.item<int64_t>() == 1)
      cache.layer(l).add_scores(from_root(layer_path(l, "score"), at::kFloat).squeeze(-1));
  }
}

namespace {

std::string nll_header(const std::string& config_hash) {
  std::string h = "lminf.stream_nll 1 " + config_hash;
  LMINF_CHECK(static_cast<int64_t>(h.size()) < NllLog::kHeaderBytes, "NllLog header too long: ", h);
  h.resize(NllLog::kHeaderBytes - 1, ' ');
  return h + "\n";
}

[[noreturn]] void nll_io_error(const std::filesystem::path& path, const char* what) {
  const int err = errno;
  fail(path.string(), ": cannot ", what, ": ", std::strerror(err), " (check the free space and permissions of ",
       path.parent_path().string(), "; the run resumes from its last flush)");
}

void write_fully(int fd, const char* p, size_t left, const std::filesystem::path& path) {
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      nll_io_error(path, "append the NLLs");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

NllLog NllLog::create(const std::filesystem::path& path, const std::string& config_hash) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) nll_io_error(path, "create the NLL log");
  NllLog log(path, fd, 0);
  const std::string h = nll_header(config_hash);
  write_fully(fd, h.data(), h.size(), path);
  log.sync();
  return log;
}

NllLog NllLog::resume(const std::filesystem::path& path, const std::string& config_hash, int64_t tokens) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) nll_io_error(path, "open the NLL log");
  NllLog log(path, fd, tokens);
  std::string h(static_cast<size_t>(kHeaderBytes), '\0');
  if (::pread(fd, h.data(), h.size(), 0) != kHeaderBytes || h != nll_header(config_hash))
    fail(path.string(), " does not belong to the stream state of this run (another configuration, or not an "
         "NLL log); set output.overwrite: true to start over");
  const off_t want = static_cast<off_t>(kHeaderBytes + tokens * static_cast<int64_t>(sizeof(float)));
  const off_t have = ::lseek(fd, 0, SEEK_END);
  if (have < want)
    fail(path.string(), " holds ", (have - kHeaderBytes) / static_cast<off_t>(sizeof(float)), " NLLs but its state "
         "records ", tokens, " (the file was changed; set output.overwrite: true to start over)");
  if (have > want && ::ftruncate(fd, want) != 0) nll_io_error(path, "truncate the NLL log");  // a killed run's tail
  if (::lseek(fd, want, SEEK_SET) != want) nll_io_error(path, "seek in the NLL log");
  log.sync();
  return log;
}

NllLog::~NllLog() {
  if (fd_ >= 0) ::close(fd_);
}

NllLog::NllLog(NllLog&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), tokens_(other.tokens_) {}

NllLog& NllLog::operator=(NllLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    tokens_ = other.tokens_;
  }
  return *this;
}

void NllLog::append(const float* nll, int64_t n) {
  LMINF_CHECK(fd_ >= 0, "NllLog::append on a closed log");
  write_fully(fd_, reinterpret_cast<const char*>(nll), static_cast<size_t>(n) * sizeof(float), path_);
  tokens_ += n;
}

void NllLog::sync() {
  if (fd_ >= 0 && ::fsync(fd_) != 0) nll_io_error(path_, "fsync the NLL log");
}

std::vector<float> NllLog::read(int64_t first, int64_t n) const {
  LMINF_CHECK(first >= 0 && n >= 0 && first + n <= tokens_, "NllLog::read ", first, "+", n, " of ", tokens_);
  std::vector<float> out(static_cast<size_t>(n));
  const size_t bytes = out.size() * sizeof(float);
  size_t got = 0;
  while (got < bytes) {
    const ssize_t r = ::pread(fd_, reinterpret_cast<char*>(out.data()) + got, bytes - got,
                              static_cast<off_t>(kHeaderBytes + first * 4) + static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) nll_io_error(path_, "read the NLL log");
    got += static_cast<size_t>(r);
  }
  return out;
}

}  // namespace lminf
