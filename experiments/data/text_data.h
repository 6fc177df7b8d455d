// Documents from raw text corpora, streamed:
//   text       one document per file (the whole file)
//   jsonl      one JSON record per line: an object whose text_field (a dotted path) holds the text,
//              or a JSON string that is the text (The Pile split by subset, as LM-Infinite's scripts do)
//   jsonl.zst  the same, zstd-compressed (The Pile's own distribution), decompressed as it streams
// `path` is a file, a folder (every file below it, sorted by path; the jsonl formats take *.jsonl
// or *.jsonl.zst files only; names starting with '.' are skipped) or a glob ("pile/*.jsonl.zst").
// filter keeps the records whose fields equal the given values, e.g. meta.pile_set_name = ArXiv.
//
// Bad records never stop a run silently and never stop it at all: a malformed JSON line, a record
// without the text field, or text that is not valid UTF-8 is skipped and counted; the first few are
// logged as warnings with file:line (and byte offset for bad UTF-8) as they happen, and report()
// gives the counts (perplexity writes them to results.json). A file that cannot be read or a
// corrupt zstd stream is an Error naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lminf {

struct TextDataOptions {
  std::string format = "text";   // text | jsonl | jsonl.zst
  std::string path;
  std::string text_field = "text";
  std::vector<std::pair<std::string, std::string>> filter;  // dotted field path -> required value
  std::string key = "data";      // the config section named in errors and warnings
  int64_t max_logged = 5;        // skipped records logged one by one; the rest only counted
};

// The files `path` stands for (sorted). Errors name `key`.path: missing path, a glob without
// matches, a folder without data files.
std::vector<std::filesystem::path> expand_data_path(const std::string& path, const std::string& format,
                                                    const std::string& key);

// The value at a dotted path ("meta.pile_set_name") of a JSON object, or nullptr.
const nlohmann::json* json_at_path(const nlohmann::json& j, const std::string& dotted);

class DocumentReader {
 public:
  explicit DocumentReader(TextDataOptions opts);
  ~DocumentReader();  // not copyable: it owns its open line source

  // The next document (valid UTF-8), false at the end of the last file.
  bool next(std::string& doc);
  // "file:line" (jsonl) or "file" (text) of the last document returned.
  const std::string& location() const { return location_; }
  // {"files", "records", "documents", "filtered_out", "skipped": {reason: count}, "first_skipped": [...]}
  nlohmann::json report() const;
  int64_t documents() const { return documents_; }
  int64_t skipped() const;

  // Calls each(line, line number from 1) for every line of `file` (zstd-compressed when `zstd`,
  // decompressed as it streams) until it returns false. For readers of whole JSON records (task qa).
  static void read_lines(const std::filesystem::path& file, bool zstd,
                         const std::function<bool(const std::string& line, int64_t line_no)>& each);

 private:
  class LineSource;
  void skip(const std::string& kind, const std::string& detail, const std::string& where);
  bool open_next_file();

  TextDataOptions opts_;
  std::vector<std::filesystem::path> files_;
  size_t next_file_ = 0;
  std::unique_ptr<LineSource> lines_;
  std::string location_;
  int64_t line_no_ = 0;  // in the current file
  int64_t records_ = 0, documents_ = 0, filtered_ = 0;
  std::vector<std::pair<std::string, int64_t>> skipped_;  // kind -> count, in first-seen order
  std::vector<std::string> first_skipped_;
};

}  // namespace lminf
