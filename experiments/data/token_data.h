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

// Cuts `seq` to at most max_length tokens (LM-Infinite's Model_Base.tokenize, spec section 2.10):
//   right:  keep the first max_length tokens
//   left:   keep the last max_length tokens
//   center: keep the first max_length/2 (rounded down) and the last max_length/2 (rounded up) tokens
// A BOS at the front counts as a token (left and center keep it only if it falls in the kept part).
// Throws for any other mode.
void truncate_tokens(std::vector<int64_t>& seq, int64_t max_length, const std::string& mode);

}  // namespace lminf
