#include "metrics/squad.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>

namespace lminf {
namespace {

bool is_word_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

// re.sub(r'\b(a|an|the)\b', ' ', text)
std::string remove_articles(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const bool boundary_before = i == 0 || !is_word_char(static_cast<unsigned char>(s[i - 1]));
    size_t matched = 0;
    if (boundary_before) {
      for (const char* art : {"a", "an", "the"}) {
        const size_t n = std::strlen(art);
        if (s.compare(i, n, art) == 0 && (i + n == s.size() || !is_word_char(static_cast<unsigned char>(s[i + n])))) {
          matched = n;
          break;
        }
      }
    }
    if (matched > 0) {
      out += ' ';
      i += matched;
    } else {
      out += s[i++];
    }
  }
  return out;
}

}  // namespace

std::string squad_normalize(const std::string& text) {
  static const std::string kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  std::string s;
  for (char c : text) {
    if (kPunctuation.find(c) != std::string::npos) continue;
    s += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::string joined;
  for (const auto& w : split_ws(remove_articles(s))) joined += (joined.empty() ? "" : " ") + w;
  return joined;
}

double squad_f1(const std::string& prediction, const std::string& gold) {
  const auto p = split_ws(squad_normalize(prediction)), g = split_ws(squad_normalize(gold));
  std::map<std::string, int64_t> gc;
  for (const auto& w : g) ++gc[w];
  int64_t common = 0;
  for (const auto& w : p) {
    auto it = gc.find(w);
    if (it != gc.end() && it->second > 0) {
      --it->second;
      ++common;
    }
  }
  if (common == 0) return 0.0;
  const double precision = static_cast<double>(common) / static_cast<double>(p.size());
  const double recall = static_cast<double>(common) / static_cast<double>(g.size());
  return 2 * precision * recall / (precision + recall);
}

double squad_exact_match(const std::string& prediction, const std::string& gold) {
  return squad_normalize(prediction) == squad_normalize(gold) ? 1.0 : 0.0;
}

double squad_f1(const std::string& prediction, const std::vector<std::string>& golds) {
  double best = 0;
  for (const auto& g : golds) best = std::max(best, squad_f1(prediction, g));
  return best;
}

double squad_exact_match(const std::string& prediction, const std::vector<std::string>& golds) {
  double best = 0;
  for (const auto& g : golds) best = std::max(best, squad_exact_match(prediction, g));
  return best;
}

}  // namespace lminf
