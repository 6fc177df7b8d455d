#include "experiments/tasks/ruler_score.h"

#include <algorithm>
#include <map>

namespace lminf {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

std::string strip(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && is_space(s[a])) ++a;
  while (b > a && is_space(s[b - 1])) --b;
  return s.substr(a, b - a);
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

}  // namespace

std::string ruler_postprocess(const std::string& prediction) {
  std::string s = strip(prediction);
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = '\n';
  return strip(s);
}

double string_match_all(const std::string& prediction, const std::vector<std::string>& references) {
  if (references.empty()) return 0.0;
  const std::string p = lower(prediction);
  int64_t found = 0;
  for (const auto& r : references) found += p.find(lower(r)) != std::string::npos;
  return static_cast<double>(found) / static_cast<double>(references.size());
}

double string_match_part(const std::string& prediction, const std::vector<std::string>& references) {
  const std::string p = lower(prediction);
  for (const auto& r : references)
    if (p.find(lower(r)) != std::string::npos) return 1.0;
  return 0.0;
}

int64_t ruler_effective_length(const nlohmann::json& averages, double threshold) {
  std::vector<std::pair<int64_t, double>> a;
  for (const auto& e : averages) a.push_back({e.at("length").get<int64_t>(), e.at("average").get<double>()});
  std::sort(a.begin(), a.end());
  int64_t effective = 0;
  for (const auto& [length, average] : a) {
    if (!(average >= threshold)) break;
    effective = length;
  }
  return effective;
}

nlohmann::json summarize_ruler(const nlohmann::json& records, const std::vector<std::string>& tasks,
                               const std::vector<int64_t>& lengths, double threshold) {
  std::map<std::pair<std::string, int64_t>, std::pair<double, int64_t>> cells;  // (task, length) -> (sum, n)
  for (const auto& r : records) {
    auto& c = cells[{r.at("task").get<std::string>(), r.at("length").get<int64_t>()}];
    c.first += r.at("score").get<double>();
    c.second += 1;
  }
  nlohmann::json scores = nlohmann::json::array(), averages = nlohmann::json::array();
  for (const auto& t : tasks)
    for (int64_t L : lengths) {
      const auto it = cells.find({t, L});
      if (it == cells.end()) continue;
      const double score = 100.0 * it->second.first / static_cast<double>(it->second.second);
      scores.push_back({{"task", t}, {"length", L}, {"score", score}, {"num_samples", it->second.second}});
    }
  for (int64_t L : lengths) {
    double sum = 0;
    int64_t n = 0;
    for (const auto& e : scores)
      if (e["length"].get<int64_t>() == L) sum += e["score"].get<double>(), ++n;
    if (n > 0) averages.push_back({{"length", L}, {"average", sum / static_cast<double>(n)}});
  }
  return {{"scores", scores},
          {"averages", averages},
          {"effective_length", {{"effective_length", ruler_effective_length(averages, threshold)}, {"threshold", threshold}}}};
}

}  // namespace lminf
