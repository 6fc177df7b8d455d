#include "metrics/rouge.h"

#include <algorithm>
#include <map>

#include "framework/core/error.h"

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

namespace {

// LCS dynamic-programme table of a and b: t[i][j] = LCS length of a[0, i) and b[0, j).
std::vector<std::vector<int64_t>> lcs_table(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::vector<int64_t>> t(a.size() + 1, std::vector<int64_t>(b.size() + 1, 0));
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j)
      t[i][j] = a[i - 1] == b[j - 1] ? t[i - 1][j - 1] + 1 : std::max(t[i - 1][j], t[i][j - 1]);
  return t;
}

// Positions in `ref` of one LCS with `cand`, by backtracking from the end.
std::vector<size_t> lcs_positions(const std::vector<std::string>& ref, const std::vector<std::string>& cand) {
  const auto t = lcs_table(ref, cand);
  std::vector<size_t> pos;
  size_t i = ref.size(), j = cand.size();
  while (i > 0 && j > 0) {
    if (ref[i - 1] == cand[j - 1]) {
      pos.push_back(i - 1);
      --i;
      --j;
    } else if (t[i][j - 1] > t[i - 1][j]) {
      --j;
    } else {
      --i;
    }
  }
  std::reverse(pos.begin(), pos.end());
  return pos;
}

std::vector<std::vector<std::string>> rouge_sentences(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  size_t start = 0;
  while (true) {
    const size_t nl = text.find('\n', start);
    out.push_back(rouge_tokenize(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start)));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

}  // namespace

RougeScore rouge_lsum(const std::vector<std::vector<std::string>>& reference_sentences,
                      const std::vector<std::vector<std::string>>& prediction_sentences) {
  std::map<std::string, int64_t> ref_left, pred_left;  // unused copies of each token
  int64_t m = 0, n = 0;
  for (const auto& s : reference_sentences) {
    m += static_cast<int64_t>(s.size());
    for (const auto& w : s) ++ref_left[w];
  }
  for (const auto& s : prediction_sentences) {
    n += static_cast<int64_t>(s.size());
    for (const auto& w : s) ++pred_left[w];
  }
  if (m == 0 || n == 0) return {};
  int64_t hits = 0;
  for (const auto& r : reference_sentences) {
    std::vector<size_t> uni;
    for (const auto& c : prediction_sentences)
      for (size_t p : lcs_positions(r, c)) uni.push_back(p);
    std::sort(uni.begin(), uni.end());
    uni.erase(std::unique(uni.begin(), uni.end()), uni.end());
    for (size_t p : uni) {
      const std::string& w = r[p];
      if (pred_left[w] > 0 && ref_left[w] > 0) {
        ++hits;
        --pred_left[w];
        --ref_left[w];
      }
    }
  }
  return from_counts(hits, n, m);
}

RougeScores rouge(const std::string& reference, const std::string& prediction) {
  const auto r = rouge_tokenize(reference), p = rouge_tokenize(prediction);
  return {rouge_n(r, p, 1), rouge_n(r, p, 2), rouge_l(r, p), rouge_lsum(rouge_sentences(reference), rouge_sentences(prediction))};
}

}  // namespace lminf
