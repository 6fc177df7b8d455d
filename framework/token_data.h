// Token-id data files: one sequence per line, space-separated non-negative integer ids.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lminf {

struct IdFileOptions {
  int64_t vocab_size = 0;       // ids must be < vocab_size (0: unchecked)
  int64_t bos_id = -1;          // prepended to every sequence when prepend_bos
  bool prepend_bos = false;
  int64_t max_sequences = 0;    // 0: all
  std::string key = "data.path";  // named in errors
};

// Reads the file; blank lines are skipped. Errors name the file, line and column of a bad token,
// an id outside the vocabulary, or a file without sequences.
std::vector<std::vector<int64_t>> read_id_file(const std::filesystem::path& path, const IdFileOptions& opts);

}  // namespace lminf
