#include "experiments/data/text_data.h"

#include <glob.h>
#include <zstd.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/core/logging.h"
#include "framework/core/utf8.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

bool is_glob(const std::string& p) { return p.find_first_of("*?[") != std::string::npos; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_data_file(const fs::path& p, const std::string& format) {
  const std::string name = p.filename().string();
  if (name.empty() || name[0] == '.') return false;
  if (format == "jsonl") return ends_with(name, ".jsonl");
  if (format == "jsonl.zst") return ends_with(name, ".jsonl.zst");
  return true;
}

}  // namespace

std::vector<fs::path> expand_data_path(const std::string& path, const std::string& format, const std::string& key) {
  std::vector<fs::path> files;
  if (path.empty()) fail(key, ".path is empty (set it to a file, a folder or a glob)");
  if (!fs::exists(path) && is_glob(path)) {
    glob_t g{};
    const int rc = glob(path.c_str(), 0, nullptr, &g);
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i)
        if (fs::is_regular_file(g.gl_pathv[i])) files.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (files.empty()) fail(key, ".path: no file matches ", path);
    return files;  // glob sorts
  }
  if (!fs::exists(path)) fail(key, ".path: ", path, " does not exist");
  if (!fs::is_directory(path)) return {fs::path(path)};
  for (const auto& e : fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink)) {
    if (!e.is_regular_file()) continue;
    bool hidden = false;
    for (const auto& part : fs::relative(e.path(), path))
      hidden = hidden || (!part.empty() && part.string()[0] == '.');
    if (!hidden && is_data_file(e.path(), format)) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty())
    fail(key, ".path: folder ", path, " holds no ",
         format == "jsonl" ? "*.jsonl files" : format == "jsonl.zst" ? "*.jsonl.zst files" : "files");
  return files;
}

const nlohmann::json* json_at_path(const nlohmann::json& j, const std::string& dotted) {
  const nlohmann::json* cur = &j;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    const std::string part = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(part);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// Lines of one file, plain or zstd-compressed (streamed in blocks).
class DocumentReader::LineSource {
 public:
  LineSource(const fs::path& file, bool zstd) : file_(file), in_(file, std::ios::binary), zstd_(zstd) {
    if (!in_) fail(file.string(), ": cannot be read");
    if (zstd_) {
      ds_ = ZSTD_createDStream();
      if (!ds_) fail(file.string(), ": out of memory for zstd");
      ZSTD_initDStream(ds_);
      in_buf_.resize(ZSTD_DStreamInSize());
      out_buf_.resize(ZSTD_DStreamOutSize());
    }
  }
  ~LineSource() {
    if (ds_) ZSTD_freeDStream(ds_);
  }
  // The whole (decompressed) file.
  std::string all() {
    if (!zstd_) return std::string(std::istreambuf_iterator<char>(in_), std::istreambuf_iterator<char>());
    while (fill()) {
    }
    std::string s;
    s.swap(pending_);
    return s;
  }
  bool next(std::string& line) {
    if (!zstd_) return static_cast<bool>(std::getline(in_, line));
    while (true) {
      const size_t nl = pending_.find('\n', pos_);
      if (nl != std::string::npos) {
        line.assign(pending_, pos_, nl - pos_);
        pos_ = nl + 1;
        return true;
      }
      pending_.erase(0, pos_);
      pos_ = 0;
      if (!fill()) {
        if (pending_.empty()) return false;
        line.swap(pending_);
        pending_.clear();
        return true;
      }
    }
  }

 private:
  // Decompresses more into pending_; false at the end of the input.
  bool fill() {
    while (true) {
      if (input_.pos == input_.size) {
        in_.read(in_buf_.data(), static_cast<std::streamsize>(in_buf_.size()));
        const size_t n = static_cast<size_t>(in_.gcount());
        if (n == 0) {
          if (frame_open_)
            fail(file_.string(), ": the zstd stream ends in the middle of a frame (a truncated download? check with zstd -t)");
          return false;
        }
        consumed_ += input_.size;
        input_ = ZSTD_inBuffer{in_buf_.data(), n, 0};
      }
      ZSTD_outBuffer out{out_buf_.data(), out_buf_.size(), 0};
      const size_t rc = ZSTD_decompressStream(ds_, &out, &input_);
      if (ZSTD_isError(rc))
        fail(file_.string(), ": corrupt zstd data near compressed byte ", consumed_ + input_.pos, ": ",
             ZSTD_getErrorName(rc), " (check the file with zstd -t)");
      frame_open_ = rc != 0;
      if (out.pos > 0) {
        pending_.append(out_buf_.data(), out.pos);
        return true;
      }
    }
  }

  fs::path file_;
  std::ifstream in_;
  bool zstd_;
  ZSTD_DStream* ds_ = nullptr;
  std::vector<char> in_buf_, out_buf_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  size_t consumed_ = 0;
  bool frame_open_ = false;
  std::string pending_;
  size_t pos_ = 0;
};

void DocumentReader::read_lines(const fs::path& file, bool zstd,
                                const std::function<bool(const std::string&, int64_t)>& each) {
  LineSource lines(file, zstd);
  std::string line;
  int64_t no = 0;
  while (lines.next(line))
    if (!each(line, ++no)) return;
}

DocumentReader::DocumentReader(TextDataOptions opts) : opts_(std::move(opts)) {
  if (opts_.format != "text" && opts_.format != "jsonl" && opts_.format != "jsonl.zst")
    fail(opts_.key, ".format: \"", opts_.format, "\" is not a text format (text, jsonl, jsonl.zst)");
  files_ = expand_data_path(opts_.path, opts_.format, opts_.key);
}

DocumentReader::~DocumentReader() = default;

void DocumentReader::skip(const std::string& kind, const std::string& detail, const std::string& where) {
  auto it = std::find_if(skipped_.begin(), skipped_.end(), [&](const auto& p) { return p.first == kind; });
  if (it == skipped_.end()) skipped_.emplace_back(kind, 1);
  else ++it->second;
  const int64_t total = skipped();
  if (total <= opts_.max_logged) {
    // Made valid UTF-8: a JSON parser's message quotes the bytes it stopped at, which can be the
    // first byte of a multi-byte character, and the report goes into results.json.
    const std::string reason = utf8_lossy(detail.empty() ? kind : kind + " (" + detail + ")");
    first_skipped_.push_back(utf8_lossy(where) + ": " + reason);
    log_warn(opts_.key, ": skipping ", where, ": ", reason,
             total == opts_.max_logged ? " (further skips are only counted; the total is reported at the end)" : "");
  }
}

int64_t DocumentReader::skipped() const {
  int64_t n = 0;
  for (const auto& [r, c] : skipped_) n += c;
  return n;
}

bool DocumentReader::open_next_file() {
  if (next_file_ >= files_.size()) return false;
  const fs::path& f = files_[next_file_++];
  const bool zstd = opts_.format == "jsonl.zst" || (opts_.format == "text" && ends_with(f.string(), ".zst"));
  lines_ = std::make_unique<LineSource>(f, zstd);
  return true;
}

bool DocumentReader::next(std::string& doc) {
  if (opts_.format == "text") {
    while (open_next_file()) {
      const std::string name = files_[next_file_ - 1].string();
      doc = lines_->all();
      lines_.reset();
      ++records_;
      const size_t bad = utf8_invalid_offset(doc);
      if (bad != std::string::npos) {
        skip("invalid UTF-8", "at byte " + std::to_string(bad), name);
        continue;
      }
      location_ = name;
      ++documents_;
      return true;
    }
    return false;
  }
  std::string line;
  int64_t line_no = 0;
  while (true) {
    if (!lines_) {
      if (!open_next_file()) return false;
      line_no_ = 0;
    }
    if (!lines_->next(line)) {
      lines_.reset();
      continue;
    }
    line_no = ++line_no_;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    ++records_;
    const std::string where = files_[next_file_ - 1].string() + ":" + std::to_string(line_no);
    const size_t bad = utf8_invalid_offset(line);
    if (bad != std::string::npos) {
      skip("invalid UTF-8", "at byte " + std::to_string(bad) + " of the line", where);
      continue;
    }
    std::string error;
    std::optional<nlohmann::json> parsed = try_parse_json(line, error);
    if (!parsed) {
      skip("malformed JSON", error, where);
      continue;
    }
    const nlohmann::json j = std::move(*parsed);
    if (j.is_string()) {
      if (!opts_.filter.empty()) {
        skip("JSON string record under a filter", "a string has no fields for " + opts_.key + ".filter", where);
        continue;
      }
      doc = j.get<std::string>();
    } else if (j.is_object()) {
      bool keep = true;
      for (const auto& [field, value] : opts_.filter) {
        const nlohmann::json* v = json_at_path(j, field);
        keep = keep && v && (v->is_string() ? v->get<std::string>() == value : v->dump() == value);
      }
      if (!keep) {
        ++filtered_;
        continue;
      }
      const nlohmann::json* t = json_at_path(j, opts_.text_field);
      if (!t) {
        skip("missing text field", "no field \"" + opts_.text_field + "\"; set " + opts_.key + ".text_field", where);
        continue;
      }
      if (!t->is_string()) {
        skip("text field not a string", "field \"" + opts_.text_field + "\"", where);
        continue;
      }
      doc = t->get<std::string>();
    } else {
      skip("not a JSON object or string", "", where);
      continue;
    }
    location_ = where;
    ++documents_;
    return true;
  }
}

nlohmann::json DocumentReader::report() const {
  nlohmann::json skipped = nlohmann::json::object();
  for (const auto& [kind, count] : skipped_) skipped[kind] = count;
  return {{"format", opts_.format},
          {"files", files_.size()},
          {"records", records_},
          {"documents", documents_},
          {"filtered_out", filtered_},
          {"skipped", skipped},
          {"skipped_total", DocumentReader::skipped()},
          {"first_skipped", first_skipped_}};
}

}  // namespace lminf
