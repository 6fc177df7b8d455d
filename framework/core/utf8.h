// UTF-8 helpers for tokenizers and text data: validation with the byte offset of the first bad
// byte, code-point iteration, and the lossy decoding (one U+FFFD per maximal ill-formed subpart,
// as Rust's from_utf8_lossy and WHATWG's TextDecoder do) that byte-level decoders need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lminf {

// Offset of the first byte that is not part of a well-formed UTF-8 sequence (overlongs, surrogates
// and code points above U+10FFFF are ill-formed), or std::string_view::npos when `s` is valid.
size_t utf8_invalid_offset(std::string_view s);

// Throws Error "<what>: invalid UTF-8 at byte N (...)" when `s` is not valid UTF-8.
void check_utf8(std::string_view s, const std::string& what);

// Length in bytes of the sequence that starts with lead byte `c` (1 for ASCII and invalid leads).
inline size_t utf8_length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes the code point at s[i] of valid UTF-8 and advances i past it.
char32_t utf8_next(std::string_view s, size_t& i);

// Appends the UTF-8 encoding of a code point.
void utf8_append(std::string& out, char32_t cp);

// `bytes` as UTF-8, each maximal ill-formed subpart replaced by U+FFFD.
std::string utf8_lossy(std::string_view bytes);

}  // namespace lminf
