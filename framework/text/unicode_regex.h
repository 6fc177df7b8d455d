// Unicode-aware regular expressions for tokenizer pre-tokenization and normalization (the patterns
// of Hugging Face tokenizer.json files, e.g. Llama-3's
// "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+").
// Backed by Debian's PCRE2 compiled with PCRE2_UTF | PCRE2_UCP, so \p{L}, \p{N}, \s and \w follow
// Unicode properties as in the Oniguruma engine that Hugging Face tokenizers use; JIT-compiled when
// the library supports it. Thread-safe: matching allocates its own match data.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lminf {

class UnicodeRegex {
 public:
  // Throws Error naming `where` and the PCRE2 message with the pattern offset on a bad pattern.
  UnicodeRegex(const std::string& pattern, const std::string& where);
  ~UnicodeRegex();
  UnicodeRegex(const UnicodeRegex&) = delete;
  UnicodeRegex& operator=(const UnicodeRegex&) = delete;

  // Every non-empty, non-overlapping match in `text` (valid UTF-8), left to right, as byte ranges
  // [begin, end).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

// A pattern that matches `literal` exactly (regex metacharacters escaped).
std::string regex_escape(std::string_view literal);

}  // namespace lminf
