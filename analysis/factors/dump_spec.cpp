#include "analysis/factors/dump_spec.h"

#include <algorithm>
#include <set>

namespace lminf {

bool DumpSpec::has(const std::string& factor) const {
  return std::find(factors.begin(), factors.end(), factor) != factors.end();
}

namespace {

void check_indices(const std::vector<int64_t>& v, int64_t n, const std::string& key, const std::string& what,
                   std::vector<std::string>& problems) {
  std::set<int64_t> seen;
  for (int64_t x : v) {
    if (x >= n)
      problems.push_back(key + ": " + std::to_string(x) + " is not a " + what + " of the model (0.." +
                         std::to_string(n - 1) + ")");
    if (!seen.insert(x).second) problems.push_back(key + ": " + std::to_string(x) + " is listed twice");
  }
}

}  // namespace

std::vector<std::string> dump_problems(const DumpSpec& d, const ModelConfig& m, int64_t data_parallel) {
  std::vector<std::string> p;
  if (!d.enabled()) return p;
  if (d.file.empty() || d.file.find('/') != std::string::npos)
    p.push_back("dump.file: \"" + d.file + "\" must be a plain file name (it goes into output.dir)");
  check_indices(d.layers, m.n_layer, "dump.layers", "layer", p);
  check_indices(d.heads, m.n_head, "dump.heads", "head", p);
  std::set<int64_t> seen;
  for (int64_t x : d.sequences)
    if (!seen.insert(x).second) p.push_back("dump.sequences: " + std::to_string(x) + " is listed twice");
  for (int64_t x : d.hidden_states)
    if (x > m.n_layer)
      p.push_back("dump.hidden_states: " + std::to_string(x) + " is past the last decoder block (the model has " +
                  std::to_string(m.n_layer) + "; index l is the output of block l)");
  for (size_t i = 1; i < d.distance_edges.size(); ++i)
    if (d.distance_edges[i] <= d.distance_edges[i - 1])
      p.push_back("dump.distance_edges: must increase strictly (" + std::to_string(d.distance_edges[i - 1]) +
                  " then " + std::to_string(d.distance_edges[i]) + ")");
  if (d.distance_edges.size() == 1)
    p.push_back("dump.distance_edges: one edge makes no bucket (give at least two, or [] for uniform buckets)");
  if (d.has("features") && d.feature_sites.empty())
    p.push_back("dump.feature_sites: empty, but dump.factors has features (name a site or drop features)");
  if (data_parallel > 1)
    p.push_back("dump: not supported with parallel.data_parallel > 1 yet (each data-parallel group would need its "
                "own rows gathered to rank 0; run the dump with data_parallel: 1)");
  return p;
}

std::vector<int64_t> dump_layers(const DumpSpec& d, const ModelConfig& m) {
  if (!d.layers.empty()) return d.layers;
  std::vector<int64_t> all;
  for (int64_t l = 0; l < m.n_layer; ++l) all.push_back(l);
  return all;
}

std::vector<int64_t> dump_hidden_states(const DumpSpec& d, const ModelConfig& m) {
  if (!d.hidden_states.empty()) return d.hidden_states;
  std::vector<int64_t> out;
  for (int64_t l : {1, 2, 3, 4, 5, 10, 20})
    if (l <= m.n_layer) out.push_back(l);
  return out;
}

std::vector<int64_t> dump_kv_heads(const DumpSpec& d, const ModelConfig& m) {
  const int64_t g = m.n_head / m.n_head_kv;
  std::set<int64_t> kv;
  if (d.heads.empty())
    for (int64_t h = 0; h < m.n_head_kv; ++h) kv.insert(h);
  for (int64_t h : d.heads) kv.insert(h / g);
  return {kv.begin(), kv.end()};
}

}  // namespace lminf
