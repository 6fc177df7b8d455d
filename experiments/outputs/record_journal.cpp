#include "experiments/outputs/record_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "experiments/outputs/json_records.h"
#include "experiments/outputs/resume_config.h"
#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/core/logging.h"

namespace lminf {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kSchema = "lminf.record_journal";
constexpr int64_t kVersion = 1;

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

bool is_journal_name(const std::string& name, const std::string& stem) {
  return name.rfind(stem + ".partial", 0) == 0 && ends_with(name, ".jsonl");
}

void write_all(int fd, const std::string& bytes, const fs::path& path) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      fail(path.string(), ": cannot append to the journal: ", std::strerror(errno), " (free space in ",
           path.parent_path().string(), " and run the same command again: the samples journalled so far are kept)");
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0)
    fail(path.string(), ": fsync of the journal failed: ", std::strerror(errno), " (free space in ",
         path.parent_path().string(), " and run the same command again)");
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string RecordJournal::file_name(const std::string& stem, int64_t replica, int64_t replicas) {
  return replicas == 1 ? stem + ".partial.jsonl" : stem + ".partial.dp" + std::to_string(replica) + ".jsonl";
}

RecordJournal::RecordJournal(RecordJournalOptions opts, Communicator& world)
    : opts_(std::move(opts)), world_(world), last_flush_(std::chrono::steady_clock::now()) {
  path_ = opts_.dir / file_name(opts_.stem, opts_.replica, opts_.replicas);
  hash_ = config_hash(opts_.resume_config);
  if (const char* k = std::getenv("LMINF_TEST_KILL_AFTER_RECORDS")) kill_after_ = std::atoll(k);
  if (const char* k = std::getenv("LMINF_TEST_KILL_SIGNAL")) kill_signal_ = std::atoi(k);  // default SIGKILL
  if (opts_.checker) check_strays();
  if (opts_.writer) load();

  // Every rank learns its replica's journalled samples (from the replica's writer).
  json mine = json::array();
  if (opts_.writer)
    for (const auto& [i, e] : done_) mine.push_back({{"replica", opts_.replica}, {"entry", e}});
  const json all = gather_json_arrays(world_, mine);
  done_.clear();
  for (const auto& x : all) {
    const int64_t index = x["entry"]["index"].get<int64_t>();
    resumed_everywhere_.insert(index);
    if (x["replica"].get<int64_t>() == opts_.replica) done_[index] = x["entry"];
  }
}

RecordJournal::~RecordJournal() {
  if (fd_ >= 0) {
    try {
      flush();
    } catch (const Error&) {
    }
    ::close(fd_);
  }
}

void RecordJournal::check_strays() {
  if (!fs::is_directory(opts_.dir)) return;
  std::set<std::string> expected;
  for (int64_t r = 0; r < opts_.replicas; ++r) expected.insert(file_name(opts_.stem, r, opts_.replicas));
  for (const auto& e : fs::directory_iterator(opts_.dir)) {
    const std::string name = e.path().filename().string();
    if (!is_journal_name(name, opts_.stem) || expected.count(name)) continue;
    if (opts_.overwrite) {
      fs::remove(e.path());
      continue;
    }
    std::string dp = "another";
    try {
      std::ifstream in(e.path());
      std::string line;
      if (std::getline(in, line)) dp = std::to_string(json::parse(line).at("data_parallel").get<int64_t>());
    } catch (const std::exception&) {
    }
    fail("output.dir: ", e.path().string(), " is the journal of a partial run with data_parallel ", dp,
         ", this run has data_parallel ", opts_.replicas, "; resume it with the same parallel.data_parallel, or set "
         "output.overwrite: true to start over");
  }
}

void RecordJournal::load() {
  if (opts_.overwrite) fs::remove(path_);
  int64_t good = 0;  // bytes of whole lines kept
  if (fs::exists(path_)) {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    size_t pos = 0;
    int64_t line_no = 0;
    while (pos < text.size()) {
      const size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) {
        log_warn(path_.string(), ": dropped an incomplete last line (", text.size() - pos,
                 " bytes; the run was killed while writing it)");
        break;
      }
      const std::string line = text.substr(pos, nl - pos);
      ++line_no;
      std::string error;
      std::optional<json> parsed = try_parse_json(line, error);
      if (!parsed)
        fail(path_.string(), ":", line_no, ": not a journal line (", error,
             "); a damaged journal: set output.overwrite: true to start over");
      json j = std::move(*parsed);
      if (line_no == 1) {
        if (!j.is_object() || j.value("schema", "") != kSchema)
          fail(path_.string(), " is not an lminf record journal (choose another output.dir, or set output.overwrite: "
               "true to replace it)");
        if (j.value("schema_version", int64_t{0}) != kVersion)
          fail(path_.string(), ": journal schema version ", j.value("schema_version", int64_t{0}),
               "; this lminf reads version ", kVersion, " (set output.overwrite: true to start over)");
        if (j.value("config_hash", "") != hash_)
          fail("output.dir: ", opts_.dir.string(), " holds a partial run (", path_.filename().string(),
               ") with another configuration, so it cannot be resumed; the keys that differ:",
               config_differences(j.value("resume_config", ""), opts_.resume_config),
               "\n  (restore them, choose another output.dir, or set output.overwrite: true to start over)");
      } else {
        if (!j.is_object() || !j.contains("index") || !j["index"].is_number_integer())
          fail(path_.string(), ":", line_no, ": a journal line without an integer \"index\" (set output.overwrite: "
               "true to start over)");
        done_.emplace(j["index"].get<int64_t>(), std::move(j));
      }
      pos = nl + 1;
      good = static_cast<int64_t>(pos);
    }
    if (line_no == 0) good = 0;  // not even a whole header: start the file again
  }
  if (fs::exists(path_)) fs::resize_file(path_, static_cast<uintmax_t>(good));  // drop a torn last line
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("output.dir: cannot write the journal ", path_.string());
  if (good == 0) {
    const json header = {{"schema", kSchema},         {"schema_version", kVersion},
                         {"config_hash", hash_},      {"resume_config", opts_.resume_config},
                         {"data_parallel", opts_.replicas}, {"replica", opts_.replica}};
    write_all(fd_, header.dump() + "\n", path_);
    fsync_dir(opts_.dir);
  } else if (!done_.empty()) {
    log_info(opts_.stem, ": resuming from ", path_.string(), ": ", done_.size(), " samples already done");
  }
}

const json* RecordJournal::find(int64_t index) const {
  auto it = done_.find(index);
  return it == done_.end() ? nullptr : &it->second;
}

void RecordJournal::append(json entry) {
  const int64_t index = entry.at("index").get<int64_t>();
  if (opts_.writer) {
    pending_ += entry.dump() + "\n";
    ++pending_count_;
  }
  done_[index] = std::move(entry);
  if (!opts_.writer) return;
  const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_flush_).count();
  if (pending_count_ >= opts_.flush_every || since >= opts_.flush_interval_s) flush();
}

void RecordJournal::flush() {
  last_flush_ = std::chrono::steady_clock::now();
  if (fd_ < 0 || pending_.empty()) return;
  write_all(fd_, pending_, path_);
  written_ += pending_count_;
  pending_.clear();
  pending_count_ = 0;
  // Fault injection for the resume tests: a real SIGKILL once this many new samples are on disk.
  if (kill_after_ >= 0 && written_ >= kill_after_) {
    kill_after_ = -1;  // once (a SIGTERM lets the run go on to its next unit of work)
    std::raise(kill_signal_);
  }
}

void RecordJournal::finish() {
  flush();
  world_.barrier();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (opts_.writer) fs::remove(path_);
}

RecordJournalOptions record_journal_options(const RunContext& ctx, const std::string& stem,
                                            const YAML::Node& task_resolved,
                                            const std::vector<std::string>& ignored_task_keys, int64_t flush_every) {
  RecordJournalOptions o;
  o.dir = ctx.out_dir;
  o.stem = stem;
  o.resume_config = resume_config(ctx.spec, task_resolved, ignored_task_keys);
  o.replicas = ctx.data_parallel ? ctx.data_parallel->size() : 1;
  o.replica = ctx.data_parallel ? ctx.data_parallel->rank() : 0;
  const int64_t tp = std::max<int64_t>(1, ctx.world.size() / o.replicas);
  o.writer = ctx.world.rank() % tp == 0;  // rank = dp * tp + tp_rank (ProcessGrid)
  o.checker = ctx.writer;
  o.overwrite = ctx.spec.output.overwrite;
  o.flush_every = flush_every;
  return o;
}

std::string record_journal_problem(const ExperimentSpec& spec, const YAML::Node& task_resolved,
                                   const std::vector<std::string>& ignored_task_keys, const std::string& stem) {
  const fs::path dir = spec.output.dir;
  if (spec.output.overwrite || dir.empty() || !fs::is_directory(dir)) return "";
  const std::string config = resume_config(spec, task_resolved, ignored_task_keys);
  const std::string hash = config_hash(config);
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!is_journal_name(name, stem)) continue;
    json header;
    try {
      std::ifstream in(e.path());
      std::string line;
      if (!std::getline(in, line) || in.eof()) continue;  // no whole header: the run rewrites it
      header = json::parse(line);
    } catch (const std::exception&) {
      continue;  // the run itself names what is wrong with the file
    }
    if (!header.is_object() || header.value("config_hash", "") == hash) continue;
    const int64_t dp = header.value("data_parallel", int64_t{0});
    if (dp != spec.parallel.data_parallel)
      return "output.dir: " + e.path().string() + " is the journal of a partial run with data_parallel " +
             std::to_string(dp) + ", this run has data_parallel " + std::to_string(spec.parallel.data_parallel) +
             "; resume it with the same parallel.data_parallel, or set output.overwrite: true to start over";
    return "output.dir: " + dir.string() + " holds a partial run (" + name +
           ") with another configuration, so it cannot be resumed; the keys that differ:" +
           config_differences(header.value("resume_config", ""), config) +
           "\n  (restore them, choose another output.dir, or set output.overwrite: true to start over)";
  }
  return "";
}

bool has_record_journal(const fs::path& dir) {
  if (!fs::is_directory(dir)) return false;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.find(".partial") != std::string::npos && ends_with(name, ".jsonl")) return true;
  }
  return false;
}

}  // namespace lminf
