#include "framework/text/unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "framework/core/error.h"
#include "framework/core/utf8.h"

namespace lminf {

struct UnicodeRegex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

UnicodeRegex::UnicodeRegex(const std::string& pattern, const std::string& where)
    : pattern_(pattern), impl_(std::make_unique<Impl>()) {
  int errcode = 0;
  PCRE2_SIZE erroffset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                              &errcode, &erroffset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(errcode, msg, sizeof msg);
    fail(where, ": regex \"", pattern, "\" is not supported: ", reinterpret_cast<const char*>(msg), " at offset ",
         erroffset);
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

UnicodeRegex::~UnicodeRegex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

std::vector<std::pair<size_t, size_t>> UnicodeRegex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  if (!md) fail("regex: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  // The text was validated by the caller; PCRE2_NO_UTF_CHECK avoids re-checking it at every offset.
  uint32_t options = PCRE2_NO_UTF_CHECK;
  while (pos <= text.size()) {
    int rc = pcre2_match(impl_->code, subject, text.size(), pos, options, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // a very long match: the interpreter uses the heap
      options |= PCRE2_NO_JIT;
      rc = pcre2_match(impl_->code, subject, text.size(), pos, options, md, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(md);
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("regex \"", pattern_, "\": matching failed at byte ", pos, ": ", reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      pos = e;
    } else {  // an empty match: step over one code point
      if (b >= text.size()) break;
      pos = b + utf8_length(static_cast<unsigned char>(text[b]));
    }
  }
  pcre2_match_data_free(md);
  return out;
}

std::string regex_escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace lminf
