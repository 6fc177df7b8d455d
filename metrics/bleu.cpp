#include "metrics/bleu.h"

#include <cmath>
#include <cstdlib>
#include <map>

#include "framework/core/error.h"

namespace lminf {
namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The character class [\{-\~\[-\` -\&\(-\+\:-\@\/] of mteval-v13a.
bool is_13a_punct(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return (u >= 0x7B && u <= 0x7E) || (u >= 0x5B && u <= 0x60) || (u >= 0x20 && u <= 0x26) ||
         (u >= 0x28 && u <= 0x2B) || (u >= 0x3A && u <= 0x40) || u == 0x2F;
}

// One left-to-right, non-overlapping pass of a two-character pattern (what Python's re.sub does for
// "(A)(B)"): where s[i] in A and s[i+1] in B, `emit` writes the replacement and both are consumed.
template <class A, class B, class Emit>
std::string sub_pairs(const std::string& s, A in_a, B in_b, Emit emit) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && in_a(s[i]) && in_b(s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

using NgramCounts = std::map<std::vector<std::string>, int64_t>;

NgramCounts ngram_counts(const Tokens& t, size_t n) {
  NgramCounts c;
  if (t.size() < n) return c;
  for (size_t i = 0; i + n <= t.size(); ++i) ++c[std::vector<std::string>(t.begin() + static_cast<std::ptrdiff_t>(i),
                                                                         t.begin() + static_cast<std::ptrdiff_t>(i + n))];
  return c;
}

}  // namespace

Tokens tokenize_13a(const std::string& text) {
  std::string s = text;
  replace_all(s, "<skipped>", "");
  replace_all(s, "-\n", "");
  replace_all(s, "\n", " ");
  if (s.find('&') != std::string::npos) {
    replace_all(s, "&quot;", "\"");
    replace_all(s, "&amp;", "&");
    replace_all(s, "&lt;", "<");
    replace_all(s, "&gt;", ">");
  }
  s = " " + s + " ";
  // 1. punctuation -> " c "
  std::string t;
  t.reserve(s.size() * 2);
  for (char c : s) {
    if (is_13a_punct(c)) {
      t += ' ';
      t += c;
      t += ' ';
    } else {
      t += c;
    }
  }
  auto not_digit = [](char c) { return !is_digit(c); };
  auto dot_comma = [](char c) { return c == '.' || c == ','; };
  // 2. ([^0-9])([\.,]) -> "\1 \2 "
  t = sub_pairs(t, not_digit, dot_comma, [](std::string& o, char a, char b) {
    o += a;
    o += ' ';
    o += b;
    o += ' ';
  });
  // 3. ([\.,])([^0-9]) -> " \1 \2"
  t = sub_pairs(t, dot_comma, not_digit, [](std::string& o, char a, char b) {
    o += ' ';
    o += a;
    o += ' ';
    o += b;
  });
  // 4. ([0-9])(-) -> "\1 \2 "
  t = sub_pairs(t, is_digit, [](char c) { return c == '-'; }, [](std::string& o, char a, char b) {
    o += a;
    o += ' ';
    o += b;
    o += ' ';
  });
  Tokens out;
  std::string cur;
  for (char c : t) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

void BleuStats::add(const BleuStats& o) {
  for (int n = 0; n < kMaxOrder; ++n) {
    matches[static_cast<size_t>(n)] += o.matches[static_cast<size_t>(n)];
    possible[static_cast<size_t>(n)] += o.possible[static_cast<size_t>(n)];
  }
  hypothesis_length += o.hypothesis_length;
  reference_length += o.reference_length;
}

BleuStats bleu_stats(const Tokens& hypothesis, const std::vector<Tokens>& references) {
  if (references.empty()) fail("BLEU: a hypothesis needs at least one reference");
  BleuStats s;
  const int64_t c = static_cast<int64_t>(hypothesis.size());
  s.hypothesis_length = c;
  // Closest reference length; ties go to the shorter reference.
  int64_t best = -1;
  for (const auto& r : references) {
    const int64_t len = static_cast<int64_t>(r.size());
    if (best < 0 || std::llabs(len - c) < std::llabs(best - c) || (std::llabs(len - c) == std::llabs(best - c) && len < best))
      best = len;
  }
  s.reference_length = best;
  for (int n = 1; n <= BleuStats::kMaxOrder; ++n) {
    const NgramCounts hyp = ngram_counts(hypothesis, static_cast<size_t>(n));
    NgramCounts max_ref;  // per n-gram, its largest count in any one reference
    for (const auto& r : references)
      for (const auto& [g, k] : ngram_counts(r, static_cast<size_t>(n))) max_ref[g] = std::max(max_ref[g], k);
    int64_t m = 0;
    for (const auto& [g, k] : hyp) {
      auto it = max_ref.find(g);
      if (it != max_ref.end()) m += std::min(k, it->second);
    }
    s.matches[static_cast<size_t>(n - 1)] = m;
    s.possible[static_cast<size_t>(n - 1)] = std::max<int64_t>(0, c - n + 1);
  }
  return s;
}

BleuResult bleu_from_stats(const BleuStats& s, BleuSmoothing smoothing) {
  BleuResult r;
  r.translation_length = s.hypothesis_length;
  r.reference_length = s.reference_length;
  bool any_zero = false;
  double log_sum = 0;
  for (int n = 0; n < BleuStats::kMaxOrder; ++n) {
    const size_t i = static_cast<size_t>(n);
    double p = 0;
    if (smoothing == BleuSmoothing::kAddOne && n >= 1)
      p = static_cast<double>(s.matches[i] + 1) / static_cast<double>(s.possible[i] + 1);
    else if (s.possible[i] > 0)
      p = static_cast<double>(s.matches[i]) / static_cast<double>(s.possible[i]);
    r.precisions[i] = p;
    if (p <= 0) any_zero = true;
    else log_sum += std::log(p) / BleuStats::kMaxOrder;
  }
  r.length_ratio = s.reference_length > 0 ? static_cast<double>(s.hypothesis_length) / static_cast<double>(s.reference_length) : 0.0;
  if (s.hypothesis_length == 0) r.brevity_penalty = 0;
  else if (s.hypothesis_length > s.reference_length) r.brevity_penalty = 1;
  else r.brevity_penalty = std::exp(1.0 - static_cast<double>(s.reference_length) / static_cast<double>(s.hypothesis_length));
  r.bleu = any_zero ? 0.0 : r.brevity_penalty * std::exp(log_sum);
  return r;
}

BleuResult corpus_bleu(const std::vector<Tokens>& hypotheses, const std::vector<std::vector<Tokens>>& references) {
  if (hypotheses.size() != references.size())
    fail("BLEU: ", hypotheses.size(), " hypotheses but ", references.size(), " reference sets");
  BleuStats total;
  for (size_t i = 0; i < hypotheses.size(); ++i) total.add(bleu_stats(hypotheses[i], references[i]));
  return bleu_from_stats(total, BleuSmoothing::kNone);
}

BleuResult sentence_bleu(const Tokens& hypothesis, const std::vector<Tokens>& references, BleuSmoothing smoothing) {
  return bleu_from_stats(bleu_stats(hypothesis, references), smoothing);
}

}  // namespace lminf
