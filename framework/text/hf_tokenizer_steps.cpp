#include "framework/text/hf_tokenizer_steps.h"

#include "framework/text/hf_tokenizer.h"  // byte_level_alphabet

#include <unicase.h>
#include <uninorm.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <unordered_map>

#include "framework/text/bpe.h"
#include "framework/core/error.h"
#include "framework/text/unicode_regex.h"
#include "framework/core/utf8.h"


namespace lminf::hf_steps {


// GPT-2's byte-level pre-tokenization regex (ByteLevel with use_regex: true).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string str_field(const json& j, const char* key, const std::string& where, const std::string& fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) fail(where, ": \"", key, "\" must be a string");
  return j[key].get<std::string>();
}

bool bool_field(const json& j, const char* key, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) return fallback;
  return j[key].get<bool>();
}

bool is_unicode_space(char32_t c) {
  return c == 0x20 || (c >= 0x09 && c <= 0x0D) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Rust's char::is_alphanumeric for the single_word check, approximated by PCRE2's \w minus '_'.
bool is_word_char(std::string_view s, size_t i, const UnicodeRegex& word) {
  const size_t n = utf8_length(static_cast<unsigned char>(s[i]));
  return !word.find_all(s.substr(i, n)).empty();
}

// ---- pieces and splitting ---------------------------------------------------------------------


enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

SplitBehavior parse_behavior(const std::string& s, const std::string& where) {
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  fail(where, ": split behavior \"", s, "\" is not supported (Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

// Splits `text` by match ranges (sorted, non-overlapping) with Hugging Face's split behaviours.
std::vector<std::string> split_by_matches(const std::string& text, const std::vector<std::pair<size_t, size_t>>& matches,
                                          SplitBehavior behavior, bool invert) {
  // (begin, end, is_match) covering the text
  struct Seg {
    size_t b, e;
    bool m;
  };
  std::vector<Seg> segs;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (b > prev) segs.push_back({prev, b, false});
    segs.push_back({b, e, true});
    prev = e;
  }
  if (prev < text.size()) segs.push_back({prev, text.size(), false});
  if (invert)
    for (auto& s : segs) s.m = !s.m;
  std::vector<Seg> out;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const auto& s : segs)
        if (!s.m) out.push_back(s);
      break;
    case SplitBehavior::kIsolated:
      out = segs;
      break;
    case SplitBehavior::kContiguous: {
      bool prev_match = false;
      for (const auto& s : segs) {
        if (s.m && prev_match && !out.empty()) out.back().e = s.e;
        else out.push_back({s.b, s.e, false});
        prev_match = s.m;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (const auto& s : segs) {
        if (s.m && !prev_match && !out.empty()) out.back().e = s.e;
        else out.push_back({s.b, s.e, false});
        prev_match = s.m;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool prev_match = false;  // whether the following segment was a match
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->m && !prev_match && !out.empty()) out.back().b = it->b;
        else out.push_back({it->b, it->e, false});
        prev_match = it->m;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  std::vector<std::string> pieces;
  for (const auto& s : out)
    if (s.e > s.b) pieces.push_back(text.substr(s.b, s.e - s.b));
  return pieces;
}

// Every occurrence of a literal (non-overlapping, left to right).
std::vector<std::pair<size_t, size_t>> find_literal(const std::string& text, const std::string& lit) {
  std::vector<std::pair<size_t, size_t>> m;
  if (lit.empty()) return m;
  for (size_t p = text.find(lit); p != std::string::npos; p = text.find(lit, p + lit.size()))
    m.emplace_back(p, p + lit.size());
  return m;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::string out;
  size_t prev = 0;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + from.size())) {
    out.append(s, prev, p - prev);
    out += to;
    prev = p + from.size();
  }
  out.append(s, prev, std::string::npos);
  s = std::move(out);
}

// A `pattern` object: {"String": "..."} or {"Regex": "..."}.
struct Pattern {
  std::string literal;
  std::shared_ptr<UnicodeRegex> regex;
  static Pattern parse(const json& j, const std::string& where) {
    Pattern p;
    if (j.is_object() && j.contains("String") && j["String"].is_string()) {
      p.literal = j["String"].get<std::string>();
    } else if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
      p.regex = std::make_shared<UnicodeRegex>(j["Regex"].get<std::string>(), where);
    } else {
      fail(where, ": \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
    }
    return p;
  }
  std::vector<std::pair<size_t, size_t>> find(const std::string& text) const {
    return regex ? regex->find_all(text) : find_literal(text, literal);
  }
  std::string replace(const std::string& text, const std::string& content) const {
    std::string out;
    size_t prev = 0;
    for (const auto& [b, e] : find(text)) {
      out.append(text, prev, b - prev);
      out += content;
      prev = e;
    }
    out.append(text, prev, std::string::npos);
    return out;
  }
};

// ---- normalizers ------------------------------------------------------------------------------


std::string unicode_normalize(const std::string& s, uninorm_t form) {
  size_t len = 0;
  uint8_t* r = u8_normalize(form, reinterpret_cast<const uint8_t*>(s.data()), s.size(), nullptr, &len);
  if (!r) fail("Unicode normalization failed (out of memory or invalid UTF-8)");
  std::string out(reinterpret_cast<const char*>(r), len);
  std::free(r);
  return out;
}

std::string unicode_lower(const std::string& s) {
  size_t len = 0;
  uint8_t* r = u8_tolower(reinterpret_cast<const uint8_t*>(s.data()), s.size(), nullptr, nullptr, nullptr, &len);
  if (!r) fail("lowercasing failed (out of memory or invalid UTF-8)");
  std::string out(reinterpret_cast<const char*>(r), len);
  std::free(r);
  return out;
}


// The steps of a Sequence (list `key`), each parsed by `parse`; empty steps (null) are dropped.
template <class Fn, class Parse>
std::vector<Fn> parse_parts(const json& j, const char* key, const std::string& where, Parse parse) {
  const json list = j.value(key, json::array());
  if (list.is_null()) return {};
  if (!list.is_array()) fail(where, ": ", key, " must be a list");
  std::vector<Fn> parts;
  for (const auto& n : list) {
    Fn f = parse(n);
    if (f) parts.push_back(std::move(f));
  }
  return parts;
}

// A Sequence of steps whose info carries a flag (`flag`: lossy, byte_level): the steps' functions,
// and whether any step has the flag.
template <class Info>
std::pair<std::vector<decltype(Info::fn)>, bool> parse_flagged_parts(const json& j, const char* key, const std::string& where,
                                                                    Info (*parse)(const json&, const std::string&),
                                                                    bool Info::*flag) {
  bool any = false;
  auto parts = parse_parts<decltype(Info::fn)>(j, key, where, [&](const json& n) {
    Info info = parse(n, where);
    any = any || info.*flag;
    return info.fn;
  });
  return {std::move(parts), any};
}

NormalizerInfo parse_normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return {};
  const std::string type = str_field(j, "type", where);
  const std::string w = where + ": normalizer " + type;
  if (type == "Sequence") {
    // (Not a structured binding: C++17 lambdas cannot capture one.)
    const auto seq = parse_flagged_parts(j, "normalizers", where, parse_normalizer, &NormalizerInfo::lossy);
    const std::vector<Normalizer> parts = seq.first;
    return {[parts](const std::string& s) {
              std::string x = s;
              for (const auto& p : parts) x = p(x);
              return x;
            },
            seq.second};
  }
  if (type == "Prepend") {
    const std::string pre = str_field(j, "prepend", w);
    return {[pre](const std::string& s) { return s.empty() ? s : pre + s; }, false};
  }
  if (type == "Replace") {
    auto pat = Pattern::parse(j.value("pattern", json()), w);
    const std::string content = str_field(j, "content", w);
    return {[pat, content](const std::string& s) { return pat.replace(s, content); }, false};
  }
  if (type == "NFC") return {[](const std::string& s) { return unicode_normalize(s, UNINORM_NFC); }, true};
  if (type == "NFD") return {[](const std::string& s) { return unicode_normalize(s, UNINORM_NFD); }, true};
  if (type == "NFKC") return {[](const std::string& s) { return unicode_normalize(s, UNINORM_NFKC); }, true};
  if (type == "NFKD") return {[](const std::string& s) { return unicode_normalize(s, UNINORM_NFKD); }, true};
  if (type == "Lowercase") return {[](const std::string& s) { return unicode_lower(s); }, true};
  if (type == "Strip") {
    const bool left = bool_field(j, "strip_left", true), right = bool_field(j, "strip_right", true);
    return {[left, right](const std::string& s) {
              size_t b = 0, e = s.size();
              if (left) {
                while (b < e) {
                  size_t i = b;
                  if (!is_unicode_space(utf8_next(s, i))) break;
                  b = i;
                }
              }
              if (right) {
                while (e > b) {
                  size_t k = e - 1;
                  while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
                  size_t i = k;
                  if (!is_unicode_space(utf8_next(s, i))) break;
                  e = k;
                }
              }
              return s.substr(b, e - b);
            },
            true};
  }
  fail(w, " is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip)");
}

// ---- pre-tokenizers ---------------------------------------------------------------------------


void split_each(std::vector<Piece>& pieces, const std::function<std::vector<std::string>(const std::string&)>& f) {
  std::vector<Piece> out;
  for (const auto& p : pieces) {
    bool first = true;
    for (auto& s : f(p.text)) {
      // A sub-piece begins the original text when its parent did and it is the parent's prefix.
      const bool at_start = p.at_start && first && p.text.compare(0, s.size(), s) == 0;
      out.push_back(Piece{std::move(s), at_start});
      first = false;
    }
  }
  pieces = std::move(out);
}

namespace {

// ByteLevel: a space before each piece (add_prefix_space), the GPT-2 regex split (null: none), then
// every byte mapped to its printable stand-in.
void byte_level_split(std::vector<Piece>& pieces, bool prefix, const UnicodeRegex* re) {
  split_each(pieces, [&](const std::string& s) {
    const std::string t = prefix && (s.empty() || s[0] != ' ') ? " " + s : s;
    if (!re) return std::vector<std::string>{t};
    return split_by_matches(t, re->find_all(t), SplitBehavior::kIsolated, false);
  });
  const auto& alpha = byte_level_alphabet();
  for (auto& p : pieces) {
    std::string mapped;
    mapped.reserve(p.text.size() * 2);
    for (char c : p.text) mapped += alpha[static_cast<unsigned char>(c)];
    p.text = std::move(mapped);
  }
}

// Metaspace: spaces become `rep`, prepended per `scheme` (always | first | never), then (split) a
// new piece at each `rep`.
void metaspace_split(std::vector<Piece>& pieces, const std::string& rep, const std::string& scheme, bool split) {
  std::vector<Piece> out;
  for (auto& p : pieces) {
    std::string t = p.text;
    replace_all(t, " ", rep);
    const bool starts = t.compare(0, rep.size(), rep) == 0;
    if (!starts && (scheme == "always" || (scheme == "first" && p.at_start))) t = rep + t;
    if (!split) {
      out.push_back(Piece{t, p.at_start});
      continue;
    }
    bool first = true;
    for (auto& s : split_by_matches(t, find_literal(t, rep), SplitBehavior::kMergedWithNext, false)) {
      out.push_back(Piece{std::move(s), p.at_start && first});
      first = false;
    }
  }
  pieces = std::move(out);
}

}  // namespace

PreTokenizerInfo parse_pre_tokenizer(const json& j, const std::string& where) {
  if (j.is_null()) return {};
  const std::string type = str_field(j, "type", where);
  const std::string w = where + ": pre_tokenizer " + type;
  if (type == "Sequence") {
    const auto seq = parse_flagged_parts(j, "pretokenizers", where, parse_pre_tokenizer, &PreTokenizerInfo::byte_level);
    const std::vector<PreTokenizer> parts = seq.first;
    return {[parts](std::vector<Piece>& pieces) {
              for (const auto& p : parts) p(pieces);
            },
            seq.second};
  }
  if (type == "Split") {
    auto pat = Pattern::parse(j.value("pattern", json()), w);
    const SplitBehavior behavior = parse_behavior(str_field(j, "behavior", w, "Isolated"), w);
    const bool invert = bool_field(j, "invert", false);
    return {[pat, behavior, invert](std::vector<Piece>& pieces) {
              split_each(pieces, [&](const std::string& s) { return split_by_matches(s, pat.find(s), behavior, invert); });
            },
            false};
  }
  if (type == "ByteLevel") {
    const bool prefix = bool_field(j, "add_prefix_space", true);
    const bool use_regex = bool_field(j, "use_regex", true);
    auto re = std::make_shared<UnicodeRegex>(kGpt2Pattern, w);
    return {[prefix, use_regex, re](std::vector<Piece>& pieces) { byte_level_split(pieces, prefix, use_regex ? re.get() : nullptr); },
            true};
  }
  if (type == "Metaspace") {
    const std::string rep = str_field(j, "replacement", w, "\xE2\x96\x81");
    std::string scheme = str_field(j, "prepend_scheme", w, "");
    if (scheme.empty()) scheme = bool_field(j, "add_prefix_space", true) ? "always" : "never";
    if (scheme != "always" && scheme != "first" && scheme != "never")
      fail(w, ": prepend_scheme \"", scheme, "\" is not supported (always, first, never)");
    const bool split = bool_field(j, "split", true);
    return {[rep, scheme, split](std::vector<Piece>& pieces) { metaspace_split(pieces, rep, scheme, split); }, false};
  }
  if (type == "Digits") {
    const bool individual = bool_field(j, "individual_digits", false);
    return {[individual](std::vector<Piece>& pieces) {
              split_each(pieces, [&](const std::string& s) {
                std::vector<std::pair<size_t, size_t>> m;
                for (size_t i = 0; i < s.size(); ++i)
                  if (s[i] >= '0' && s[i] <= '9') m.emplace_back(i, i + 1);
                return split_by_matches(s, m, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false);
              });
            },
            false};
  }
  if (type == "Whitespace") {
    auto re = std::make_shared<UnicodeRegex>(R"(\w+|[^\w\s]+)", w);
    return {[re](std::vector<Piece>& pieces) {
              split_each(pieces, [&](const std::string& s) { return split_by_matches(s, re->find_all(s), SplitBehavior::kRemoved, true); });
            },
            false};
  }
  if (type == "WhitespaceSplit") {
    auto re = std::make_shared<UnicodeRegex>(R"(\s+)", w);
    return {[re](std::vector<Piece>& pieces) {
              split_each(pieces, [&](const std::string& s) { return split_by_matches(s, re->find_all(s), SplitBehavior::kRemoved, false); });
            },
            false};
  }
  fail(w, " is not supported (supported: Sequence, Split, ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit)");
}

// character (UTF-8) -> byte, the inverse of byte_level_alphabet()
const std::unordered_map<std::string, unsigned char>& byte_level_inverse() {
  static const std::unordered_map<std::string, unsigned char> table = [] {
    std::unordered_map<std::string, unsigned char> t;
    const auto& alpha = byte_level_alphabet();
    for (int b = 0; b < 256; ++b) t.emplace(alpha[static_cast<size_t>(b)], static_cast<unsigned char>(b));
    return t;
  }();
  return table;
}

// ---- decoders ---------------------------------------------------------------------------------

namespace {

// ByteLevel: printable stand-ins back to bytes (a token with a character outside the alphabet is
// kept as it is), the whole text made valid UTF-8.
void decode_byte_level(std::vector<std::string>& tokens) {
  const auto& inverse = byte_level_inverse();
  std::string bytes;
  for (const auto& t : tokens) {
    std::string mapped;
    bool all = true;
    for (size_t i = 0; i < t.size() && all;) {
      const size_t n = utf8_length(static_cast<unsigned char>(t[i]));
      auto it = inverse.find(t.substr(i, n));
      if (it == inverse.end()) all = false;
      else mapped += static_cast<char>(it->second);
      i += n;
    }
    bytes += all ? mapped : t;
  }
  tokens = {utf8_lossy(bytes)};
}

// ByteFallback: runs of <0xNN> tokens become their bytes when those are valid UTF-8, else one U+FFFD
// per byte token.
void decode_byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string pending;  // consecutive <0xNN> bytes
  size_t n_pending = 0;
  auto flush = [&] {
    if (n_pending == 0) return;
    if (utf8_invalid_offset(pending) == std::string_view::npos) {
      out.push_back(pending);
    } else {
      for (size_t k = 0; k < n_pending; ++k) out.emplace_back("\xEF\xBF\xBD");
    }
    pending.clear();
    n_pending = 0;
  };
  for (auto& t : tokens) {
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
        std::isxdigit(static_cast<unsigned char>(t[4]))) {
      pending += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
      ++n_pending;
    } else {
      flush();
      out.push_back(std::move(t));
    }
  }
  flush();
  tokens = std::move(out);
}

}  // namespace

Decoder parse_decoder(const json& j, const std::string& where) {
  if (j.is_null()) return {};
  const std::string type = str_field(j, "type", where);
  const std::string w = where + ": decoder " + type;
  if (type == "Sequence") {
    const auto parts = parse_parts<Decoder>(j, "decoders", where, [&](const json& n) { return parse_decoder(n, where); });
    return [parts](std::vector<std::string>& t) {
      for (const auto& p : parts) p(t);
    };
  }
  if (type == "ByteLevel") {
    return decode_byte_level;
  }
  if (type == "Metaspace") {
    const std::string rep = str_field(j, "replacement", w, "\xE2\x96\x81");
    std::string scheme = str_field(j, "prepend_scheme", w, "");
    if (scheme.empty()) scheme = bool_field(j, "add_prefix_space", true) ? "always" : "never";
    const bool strip_first = scheme != "never";
    return [rep, strip_first](std::vector<std::string>& tokens) {
      for (size_t i = 0; i < tokens.size(); ++i) replace_all(tokens[i], rep, i == 0 && strip_first ? "" : " ");
    };
  }
  if (type == "Replace") {
    auto pat = Pattern::parse(j.value("pattern", json()), w);
    const std::string content = str_field(j, "content", w);
    return [pat, content](std::vector<std::string>& tokens) {
      for (auto& t : tokens) t = pat.replace(t, content);
    };
  }
  if (type == "ByteFallback") {
    return decode_byte_fallback;
  }
  if (type == "Fuse") {
    return [](std::vector<std::string>& tokens) {
      std::string s;
      for (const auto& t : tokens) s += t;
      tokens = {s};
    };
  }
  if (type == "Strip") {
    const std::string content = str_field(j, "content", w, " ");
    const int64_t start = j.value("start", int64_t{0}), stop = j.value("stop", int64_t{0});
    return [content, start, stop](std::vector<std::string>& tokens) {
      if (content.empty()) return;
      for (auto& t : tokens) {
        size_t b = 0, e = t.size();
        for (int64_t k = 0; k < start && t.compare(b, content.size(), content) == 0 && b < e; ++k) b += content.size();
        for (int64_t k = 0; k < stop && e >= b + content.size() && t.compare(e - content.size(), content.size(), content) == 0; ++k)
          e -= content.size();
        t = t.substr(b, e - b);
      }
    };
  }
  fail(w, " is not supported (supported: Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip)");
}

}  // namespace lminf::hf_steps
