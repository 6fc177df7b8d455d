#include "framework/text/hf_tokenizer.h"

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

namespace lminf {
namespace {

using json = nlohmann::json;

// GPT-2's byte-level pre-tokenization regex (ByteLevel with use_regex: true).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string str_field(const json& j, const char* key, const std::string& where, const std::string& fallback = "") {
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

// A pre-tokenized piece; at_start: it begins at offset 0 of the original text (Metaspace "first").
struct Piece {
  std::string text;
  bool at_start = false;
};

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

using Normalizer = std::function<std::string(const std::string&)>;

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

struct NormalizerInfo {
  Normalizer fn;
  bool lossy = false;  // loses information (decode cannot restore the text)
};

NormalizerInfo parse_normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return {};
  const std::string type = str_field(j, "type", where);
  const std::string w = where + ": normalizer " + type;
  if (type == "Sequence") {
    std::vector<Normalizer> parts;
    bool lossy = false;
    for (const auto& n : j.value("normalizers", json::array())) {
      auto p = parse_normalizer(n, where);
      if (p.fn) parts.push_back(p.fn);
      lossy = lossy || p.lossy;
    }
    return {[parts](const std::string& s) {
              std::string x = s;
              for (const auto& p : parts) x = p(x);
              return x;
            },
            lossy};
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

using PreTokenizer = std::function<void(std::vector<Piece>&)>;

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

struct PreTokenizerInfo {
  PreTokenizer fn;
  bool byte_level = false;
};

PreTokenizerInfo parse_pre_tokenizer(const json& j, const std::string& where) {
  if (j.is_null()) return {};
  const std::string type = str_field(j, "type", where);
  const std::string w = where + ": pre_tokenizer " + type;
  if (type == "Sequence") {
    std::vector<PreTokenizer> parts;
    bool byte_level = false;
    for (const auto& n : j.value("pretokenizers", json::array())) {
      auto p = parse_pre_tokenizer(n, where);
      if (p.fn) parts.push_back(p.fn);
      byte_level = byte_level || p.byte_level;
    }
    return {[parts](std::vector<Piece>& pieces) {
              for (const auto& p : parts) p(pieces);
            },
            byte_level};
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
    return {[prefix, use_regex, re](std::vector<Piece>& pieces) {
              split_each(pieces, [&](const std::string& s) {
                const std::string t = prefix && (s.empty() || s[0] != ' ') ? " " + s : s;
                if (!use_regex) return std::vector<std::string>{t};
                return split_by_matches(t, re->find_all(t), SplitBehavior::kIsolated, false);
              });
              const auto& alpha = byte_level_alphabet();
              for (auto& p : pieces) {
                std::string mapped;
                mapped.reserve(p.text.size() * 2);
                for (char c : p.text) mapped += alpha[static_cast<unsigned char>(c)];
                p.text = std::move(mapped);
              }
            },
            true};
  }
  if (type == "Metaspace") {
    const std::string rep = str_field(j, "replacement", w, "\xE2\x96\x81");
    std::string scheme = str_field(j, "prepend_scheme", w, "");
    if (scheme.empty()) scheme = bool_field(j, "add_prefix_space", true) ? "always" : "never";
    if (scheme != "always" && scheme != "first" && scheme != "never")
      fail(w, ": prepend_scheme \"", scheme, "\" is not supported (always, first, never)");
    const bool split = bool_field(j, "split", true);
    return {[rep, scheme, split](std::vector<Piece>& pieces) {
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
            },
            false};
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

using Decoder = std::function<void(std::vector<std::string>&)>;

Decoder parse_decoder(const json& j, const std::string& where) {
  if (j.is_null()) return {};
  const std::string type = str_field(j, "type", where);
  const std::string w = where + ": decoder " + type;
  if (type == "Sequence") {
    std::vector<Decoder> parts;
    for (const auto& n : j.value("decoders", json::array())) {
      auto d = parse_decoder(n, where);
      if (d) parts.push_back(d);
    }
    return [parts](std::vector<std::string>& t) {
      for (const auto& p : parts) p(t);
    };
  }
  if (type == "ByteLevel") {
    return [](std::vector<std::string>& tokens) {
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
    };
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
    return [](std::vector<std::string>& tokens) {
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
    };
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

struct AddedToken {
  int64_t id = -1;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

}  // namespace

// ---- the tokenizer ----------------------------------------------------------------------------

struct HfTokenizer::Impl {
  std::string where;
  TokenizerConfig config;
  NormalizerInfo normalizer;
  PreTokenizerInfo pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  Decoder decoder;
  std::vector<AddedToken> added;             // in file order
  std::vector<std::string> id_to_token;      // model vocab and added tokens
  std::vector<char> is_special;              // per id
  std::vector<int64_t> prefix, suffix;       // added around a text by encode(text, true)
  int64_t bos = -1, eos = -1;
  int64_t n_vocab = 0;
  bool round_trips = false;
  std::unique_ptr<UnicodeRegex> word_re;     // \w, for single_word added tokens
  // added tokens by first byte, longest first, split by whether they match raw or normalized text
  std::vector<std::vector<const AddedToken*>> raw_by_byte, norm_by_byte;

  int64_t lookup(std::string_view tok) const {
    for (const auto& a : added)
      if (a.content == tok) return a.id;
    return model->token_to_id(tok);
  }

  // Splits `text` into (segment, added token id or -1) with leftmost-longest matching.
  void split_added(const std::string& text, const std::vector<std::vector<const AddedToken*>>& by_byte,
                   std::vector<std::pair<std::string, int64_t>>& out) const {
    size_t seg_start = 0, p = 0;
    while (p < text.size()) {
      const AddedToken* hit = nullptr;
      for (const AddedToken* a : by_byte[static_cast<unsigned char>(text[p])]) {
        if (text.compare(p, a->content.size(), a->content) != 0) continue;
        if (a->single_word) {
          const size_t e = p + a->content.size();
          bool ok = true;
          if (p > 0) {
            size_t k = p - 1;
            while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
            ok = !is_word_char(text, k, *word_re);
          }
          if (ok && e < text.size()) ok = !is_word_char(text, e, *word_re);
          if (!ok) continue;
        }
        hit = a;  // longest first
        break;
      }
      if (!hit) {
        p += utf8_length(static_cast<unsigned char>(text[p]));
        continue;
      }
      size_t b = p, e = p + hit->content.size();
      if (hit->lstrip)
        while (b > seg_start && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
      if (hit->rstrip)
        while (e < text.size() && std::isspace(static_cast<unsigned char>(text[e]))) ++e;
      if (b > seg_start) out.emplace_back(text.substr(seg_start, b - seg_start), -1);
      out.emplace_back(std::string(), hit->id);
      seg_start = p = e;
    }
    if (seg_start < text.size()) out.emplace_back(text.substr(seg_start), -1);
  }
};

HfTokenizer::HfTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::~HfTokenizer() = default;

std::unique_ptr<HfTokenizer> HfTokenizer::from_file(const std::filesystem::path& tokenizer_json,
                                                    const TokenizerConfig& config) {
  std::ifstream in(tokenizer_json, std::ios::binary);
  if (!in) fail(tokenizer_json.string(), ": cannot be read");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::parse_error& e) {
    fail(tokenizer_json.string(), ": malformed JSON: ", e.what(),
         " (the file is damaged or truncated: download tokenizer.json again)");
  }
  return from_json(j, config, tokenizer_json.string());
}

std::unique_ptr<HfTokenizer> HfTokenizer::from_json(const json& j, const TokenizerConfig& config,
                                                    const std::string& where) {
  if (!j.is_object()) fail(where, ": expected a JSON object (a Hugging Face tokenizer.json)");
  auto impl = std::make_unique<Impl>();
  impl->where = where;
  impl->config = config;
  try {
    // model
    const json& m = j.value("model", json());
    if (!m.is_object()) fail(where, ": no \"model\" object");
    const std::string type = str_field(m, "type", where, "BPE");
    if (type != "BPE")
      fail(where, ": model type \"", type, "\" is not supported (lminf reads BPE tokenizer.json files; ",
           "for a SentencePiece Unigram model use its tokenizer.model)");
    if (m.contains("continuing_subword_prefix") && !m["continuing_subword_prefix"].is_null() &&
        !m["continuing_subword_prefix"].get<std::string>().empty())
      fail(where, ": BPE continuing_subword_prefix is not supported");
    if (m.contains("end_of_word_suffix") && !m["end_of_word_suffix"].is_null() &&
        !m["end_of_word_suffix"].get<std::string>().empty())
      fail(where, ": BPE end_of_word_suffix is not supported");
    if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() > 0)
      fail(where, ": BPE dropout is not supported (it makes encoding random)");
    const json& v = m.value("vocab", json());
    if (!v.is_object()) fail(where, ": model.vocab must be an object of token -> id");
    std::unordered_map<std::string, int64_t> vocab;
    vocab.reserve(v.size());
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_number_integer()) fail(where, ": model.vocab[\"", it.key(), "\"] is not an integer id");
      vocab.emplace(it.key(), it.value().get<int64_t>());
    }
    std::vector<std::pair<std::string, std::string>> merges;
    const json& mj = m.value("merges", json::array());
    merges.reserve(mj.size());
    for (size_t r = 0; r < mj.size(); ++r) {
      const json& e = mj[r];
      if (e.is_string()) {
        const std::string s = e.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          fail(where, ": merge ", r, " \"", s, "\" must be two tokens separated by one space");
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        fail(where, ": merge ", r, " must be \"a b\" or [\"a\", \"b\"]");
      }
    }
    BpeOptions bo;
    bo.byte_fallback = bool_field(m, "byte_fallback", false);
    bo.fuse_unk = bool_field(m, "fuse_unk", false);
    bo.ignore_merges = bool_field(m, "ignore_merges", false);
    const std::string unk = str_field(m, "unk_token", where);
    if (!unk.empty()) {
      auto it = vocab.find(unk);
      if (it == vocab.end()) fail(where, ": model.unk_token \"", unk, "\" is not in the vocabulary");
      bo.unk_id = it->second;
    }
    impl->model = std::make_unique<BpeModel>(std::move(vocab), merges, bo, where);

    // added tokens
    for (const auto& a : j.value("added_tokens", json::array())) {
      AddedToken t;
      t.id = a.value("id", int64_t{-1});
      t.content = str_field(a, "content", where);
      t.special = bool_field(a, "special", false);
      t.lstrip = bool_field(a, "lstrip", false);
      t.rstrip = bool_field(a, "rstrip", false);
      t.single_word = bool_field(a, "single_word", false);
      t.normalized = bool_field(a, "normalized", !t.special);
      if (t.id < 0 || t.content.empty()) fail(where, ": an added token needs an id >= 0 and a non-empty content");
      check_utf8(t.content, where + ": added token " + std::to_string(t.id));
      impl->added.push_back(std::move(t));
    }

    impl->normalizer = parse_normalizer(j.value("normalizer", json()), where);
    impl->pre_tokenizer = parse_pre_tokenizer(j.value("pre_tokenizer", json()), where);
    impl->decoder = parse_decoder(j.value("decoder", json()), where);
  } catch (const json::exception& e) {
    fail(where, ": unexpected tokenizer.json structure: ", e.what());
  }
  Impl& t = *impl;
  t.word_re = std::make_unique<UnicodeRegex>(R"([^\W_])", where);

  // id -> token, specials
  int64_t max_id = -1;
  for (const auto& [tok, id] : t.model->vocab()) max_id = std::max(max_id, id);
  for (const auto& a : t.added) max_id = std::max(max_id, a.id);
  t.n_vocab = max_id + 1;
  t.id_to_token.assign(static_cast<size_t>(t.n_vocab), std::string());
  t.is_special.assign(static_cast<size_t>(t.n_vocab), 0);
  for (const auto& [tok, id] : t.model->vocab()) t.id_to_token[static_cast<size_t>(id)] = tok;
  for (const auto& a : t.added) {
    t.id_to_token[static_cast<size_t>(a.id)] = a.content;
    t.is_special[static_cast<size_t>(a.id)] = a.special ? 1 : 0;
  }
  t.raw_by_byte.assign(256, {});
  t.norm_by_byte.assign(256, {});
  for (const auto& a : t.added)
    (a.normalized && t.normalizer.fn ? t.norm_by_byte : t.raw_by_byte)[static_cast<unsigned char>(a.content[0])].push_back(&a);
  for (auto* table : {&t.raw_by_byte, &t.norm_by_byte})
    for (auto& list : *table)
      std::stable_sort(list.begin(), list.end(),
                       [](const AddedToken* x, const AddedToken* y) { return x->content.size() > y->content.size(); });

  // BOS / EOS and what encode(text, true) adds
  auto id_of = [&](const std::optional<std::string>& tok, const char* key) -> int64_t {
    if (!tok) return -1;
    const int64_t id = t.lookup(*tok);
    if (id < 0)
      fail(t.config.source.string(), ": ", key, " \"", *tok, "\" is not a token of ", where);
    return id;
  };
  t.bos = id_of(config.bos_token, "bos_token");
  t.eos = id_of(config.eos_token, "eos_token");
  if (config.add_bos_token || config.add_eos_token) {
    if (config.add_bos_token.value_or(false)) {
      if (t.bos < 0) fail(t.config.source.string(), ": add_bos_token is true but there is no bos_token");
      t.prefix = {t.bos};
    }
    if (config.add_eos_token.value_or(false)) {
      if (t.eos < 0) fail(t.config.source.string(), ": add_eos_token is true but there is no eos_token");
      t.suffix = {t.eos};
    }
  } else {
    // the post-processor's template for a single sequence
    std::function<void(const json&)> post = [&](const json& p) {
      if (p.is_null()) return;
      const std::string type = str_field(p, "type", where);
      if (type == "Sequence") {
        for (const auto& q : p.value("processors", json::array())) post(q);
      } else if (type == "ByteLevel") {
        // offsets only
      } else if (type == "TemplateProcessing") {
        const json& specials = p.value("special_tokens", json::object());
        bool seen_a = false;
        t.prefix.clear();
        t.suffix.clear();
        for (const auto& item : p.value("single", json::array())) {
          if (item.contains("Sequence")) {
            seen_a = true;
          } else if (item.contains("SpecialToken")) {
            const std::string name = str_field(item["SpecialToken"], "id", where);
            if (!specials.contains(name)) fail(where, ": post_processor names special token \"", name, "\" without ids");
            for (const auto& id : specials[name].value("ids", json::array()))
              (seen_a ? t.suffix : t.prefix).push_back(id.get<int64_t>());
          }
        }
      } else if (type == "RobertaProcessing" || type == "BertProcessing") {
        t.prefix = {p.at("cls").at(1).get<int64_t>()};
        t.suffix = {p.at("sep").at(1).get<int64_t>()};
      } else {
        fail(where, ": post_processor ", type,
             " is not supported (TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
      }
    };
    try {
      post(j.value("post_processor", json()));
    } catch (const json::exception& e) {
      fail(where, ": unexpected post_processor structure: ", e.what());
    }
  }
  for (int64_t id : t.prefix)
    if (id < 0 || id >= t.n_vocab) fail(where, ": post_processor adds id ", id, " outside the vocabulary");
  for (int64_t id : t.suffix)
    if (id < 0 || id >= t.n_vocab) fail(where, ": post_processor adds id ", id, " outside the vocabulary");
  auto tok = std::unique_ptr<HfTokenizer>(new HfTokenizer(std::move(impl)));
  // Whether decode(encode(x)) == x: the structure must allow it (a decoder, no lossy normalizer,
  // no unknown tokens), and a probe with the usual casualties -- leading and repeated spaces,
  // tabs and newlines, decomposed accents, characters outside any small vocabulary -- must survive
  // (a Metaspace pre-tokenizer with a Strip decoder, e.g., loses a leading space).
  Impl& ti = *tok->impl_;
  const bool no_unknowns = ti.pre_tokenizer.byte_level || ti.model->options().byte_fallback;
  if (ti.decoder && !ti.normalizer.lossy && no_unknowns) {
    ti.round_trips = true;
    for (const std::string probe : {" lead", "  two  spaces ", "a\tb\n\n c", "e\xCC\x81 \xC3\xA9", "\xF0\x9F\xA4\x97x", "x"})
      ti.round_trips = ti.round_trips && tok->decode(tok->encode(probe, false)) == probe;
  }
  return tok;
}

std::vector<int64_t> HfTokenizer::encode(std::string_view text, bool add_special) const {
  const Impl& t = *impl_;
  check_utf8(text, "tokenizer input");
  std::vector<int64_t> ids;
  if (add_special) ids = t.prefix;
  std::vector<std::pair<std::string, int64_t>> raw;
  t.split_added(std::string(text), t.raw_by_byte, raw);
  bool at_start = true;
  for (auto& [segment, added_id] : raw) {
    if (added_id >= 0) {
      ids.push_back(added_id);
      at_start = false;
      continue;
    }
    const std::string normalized = t.normalizer.fn ? t.normalizer.fn(segment) : segment;
    std::vector<std::pair<std::string, int64_t>> parts;
    t.split_added(normalized, t.norm_by_byte, parts);
    for (auto& [part, id] : parts) {
      if (id >= 0) {
        ids.push_back(id);
        at_start = false;
        continue;
      }
      std::vector<Piece> pieces{Piece{std::move(part), at_start}};
      if (t.pre_tokenizer.fn) t.pre_tokenizer.fn(pieces);
      for (const auto& p : pieces) t.model->tokenize(p.text, ids);
      at_start = false;
    }
    at_start = false;
  }
  if (add_special) ids.insert(ids.end(), t.suffix.begin(), t.suffix.end());
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= t.n_vocab || (t.id_to_token[static_cast<size_t>(id)].empty()))
      fail("decode: token id ", id, " is not in the vocabulary of ", t.where, " (", t.n_vocab, " ids)");
    if (skip_special && t.is_special[static_cast<size_t>(id)]) continue;
    tokens.push_back(t.id_to_token[static_cast<size_t>(id)]);
  }
  if (!t.decoder) {
    std::string s;
    for (size_t i = 0; i < tokens.size(); ++i) s += (i ? " " : "") + tokens[i];
    return s;
  }
  t.decoder(tokens);
  std::string s;
  for (const auto& x : tokens) s += x;
  return utf8_lossy(s);
}

int64_t HfTokenizer::vocab_size() const { return impl_->n_vocab; }
int64_t HfTokenizer::bos_id() const { return impl_->bos; }
int64_t HfTokenizer::eos_id() const { return impl_->eos; }

std::string HfTokenizer::id_to_piece(int64_t id) const {
  if (id < 0 || id >= impl_->n_vocab) return "";
  return impl_->id_to_token[static_cast<size_t>(id)];
}

int64_t HfTokenizer::token_to_id(std::string_view token) const { return impl_->lookup(token); }

bool HfTokenizer::round_trips() const { return impl_->round_trips; }

std::string HfTokenizer::description() const {
  const Impl& t = *impl_;
  std::string kind = t.pre_tokenizer.byte_level ? "byte-level BPE"
                     : t.model->options().byte_fallback ? "BPE with byte fallback"
                                                        : "BPE";
  return t.where + " (" + kind + ", " + std::to_string(t.n_vocab) + " ids, " + std::to_string(t.model->n_merges()) +
         " merges)";
}

const std::vector<std::string>& byte_level_alphabet() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      std::string s;
      utf8_append(s, static_cast<char32_t>(printable ? b : next++));
      t[static_cast<size_t>(b)] = s;
    }
    return t;
  }();
  return table;
}

}  // namespace lminf
