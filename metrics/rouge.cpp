#include "metrics/rouge.h"

#include <algorithm>
#include <map>

#include "framework/error.h"

namespace lminf {
namespace {

RougeScore from_counts(int64_t overlap, int64_t n_prediction, int64_t n_reference) {
  RougeScore s;
  s.precision = n_prediction > 0 ? static_cast<double>(overlap) / static_cast<double>(n_prediction) : 0.0;
  s.recall = n_reference > 0 ? static_cast<double>(overlap) / static_cast<double>(n_reference) : 0.0;
  s.fmeasure = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

std::map<std::vector<std::string>, int64_t> ngrams(const std::vector<std::string>& t, size_t n) {
  std::map<std::vector<std::string>, int64_t> c;
  for (size_t i = 0; i + n <= t.size(); ++i)
    ++c[std::vector<std::string>(t.begin() + static_cast<std::ptrdiff_t>(i), t.begin() + static_cast<std::ptrdiff_t>(i + n))];
  return c;
}

}  // namespace

std::vector<std::string> rouge_tokenize(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    char c = ch;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur += c;
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

RougeScore rouge_n(const std::vector<std::string>& reference, const std::vector<std::string>& prediction, int n) {
  if (n < 1) fail("ROUGE-N: n = ", n, " must be >= 1");
  const auto ref = ngrams(reference, static_cast<size_t>(n));
  const auto pred = ngrams(prediction, static_cast<size_t>(n));
  int64_t overlap = 0, n_ref = 0, n_pred = 0;
  for (const auto& [g, k] : ref) n_ref += k;
  for (const auto& [g, k] : pred) {
    n_pred += k;
    auto it = ref.find(g);
    if (it != ref.end()) overlap += std::min(k, it->second);
  }
  return from_counts(overlap, n_pred, n_ref);
}

RougeScore rouge_l(const std::vector<std::string>& reference, const std::vector<std::string>& prediction) {
  // Classic O(|r| |p|) dynamic programme, one row at a time.
  const size_t R = reference.size(), P = prediction.size();
  std::vector<int64_t> prev(P + 1, 0), cur(P + 1, 0);
  for (size_t i = 1; i <= R; ++i) {
    for (size_t j = 1; j <= P; ++j)
      cur[j] = reference[i - 1] == prediction[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return from_counts(prev[P], static_cast<int64_t>(P), static_cast<int64_t>(R));
}

RougeScores rouge(const std::string& reference, const std::string& prediction) {
  const auto r = rouge_tokenize(reference), p = rouge_tokenize(prediction);
  return {rouge_n(r, p, 1), rouge_n(r, p, 2), rouge_l(r, p)};
}

}  // namespace lminf
