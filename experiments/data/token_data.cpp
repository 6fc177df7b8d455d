#include "experiments/data/token_data.h"

#include <fstream>

#include "framework/core/error.h"

namespace lminf {

std::vector<std::vector<int64_t>> read_id_file(const std::filesystem::path& path, const IdFileOptions& opts) {
  if (!std::filesystem::exists(path)) fail(opts.key, ": ", path.string(), " does not exist");
  if (std::filesystem::is_directory(path)) fail(opts.key, ": ", path.string(), " is a folder, expected a file of token ids");
  std::ifstream in(path);
  if (!in) fail(opts.key, ": ", path.string(), " cannot be read");
  if (opts.prepend_bos && opts.bos_id < 0)
    fail(opts.key, ": data.prepend_bos is true but the model's config.json has no bos_token_id (set data.prepend_bos: false)");
  std::vector<std::vector<int64_t>> seqs;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::vector<int64_t> seq;
    if (opts.prepend_bos) seq.push_back(opts.bos_id);
    size_t i = 0;
    bool any = false;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == ',')) ++i;
      if (i >= line.size()) break;
      const size_t start = i;
      int64_t v = 0;
      bool digits = false;
      while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
        v = v * 10 + (line[i] - '0');
        digits = true;
        if (v > (int64_t{1} << 40)) break;
        ++i;
      }
      if (!digits || (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != ',')) {
        size_t end = line.find_first_of(" \t\r,", start);
        fail(path.string(), ":", line_no, ":", start + 1, ": \"", line.substr(start, end - start),
             "\" is not a token id (", opts.key, " must hold one sequence per line of space-separated non-negative integers)");
      }
      if (opts.vocab_size > 0 && v >= opts.vocab_size)
        fail(path.string(), ":", line_no, ":", start + 1, ": token id ", v, " is outside the model's vocabulary (vocab_size ",
             opts.vocab_size, "): the data was tokenized for another model");
      seq.push_back(v);
      any = true;
    }
    if (!any) continue;
    seqs.push_back(std::move(seq));
    if (opts.max_sequences > 0 && static_cast<int64_t>(seqs.size()) >= opts.max_sequences) break;
  }
  if (seqs.empty()) fail(opts.key, ": ", path.string(), " holds no sequences (expected one line of token ids per sequence)");
  return seqs;
}

void truncate_tokens(std::vector<int64_t>& seq, int64_t max_length, const std::string& mode) {
  if (mode != "right" && mode != "left" && mode != "center")
    fail("truncation \"", mode, "\" is not one of left, right, center");
  const int64_t n = static_cast<int64_t>(seq.size());
  if (max_length < 0) fail("truncation: max_length ", max_length, " < 0");
  if (n <= max_length) return;
  if (mode == "right") {
    seq.resize(static_cast<size_t>(max_length));
  } else if (mode == "left") {
    seq.erase(seq.begin(), seq.begin() + (n - max_length));
  } else {
    // Python: ids[:m // 2] + ids[-m // 2:], where -m // 2 rounds down, so the tail gets ceil(m / 2).
    const int64_t head = max_length / 2, tail = max_length - head;
    seq.erase(seq.begin() + head, seq.begin() + (n - tail));
  }
}

}  // namespace lminf
