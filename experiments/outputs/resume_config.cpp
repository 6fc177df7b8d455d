#include "experiments/outputs/resume_config.h"

#include <cstdint>
#include <cstdio>
#include <map>

#include "framework/config/spec.h"

namespace lminf {
namespace {

// "key.sub: value" lines of a YAML map, for naming the keys two configurations differ in.
void flatten(const YAML::Node& n, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (const auto& kv : n) flatten(kv.second, prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar(), out);
  } else {
    std::string v = to_yaml_string(n);
    while (!v.empty() && v.back() == '\n') v.pop_back();
    out[prefix] = v;
  }
}

}  // namespace

std::string resume_config(const ExperimentSpec& spec, const YAML::Node& task_resolved,
                          const std::vector<std::string>& ignored_task_keys) {
  YAML::Node n = write_spec(spec);
  n["task"] = YAML::Clone(task_resolved);
  for (const char* k : {"name", "threads", "output", "sweep"}) n.remove(k);
  for (const auto& k : ignored_task_keys) n["task"].remove(k);
  return to_yaml_string(n);
}

std::string config_hash(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string config_differences(const std::string& old_yaml, const std::string& new_yaml) {
  std::map<std::string, std::string> a, b;
  flatten(YAML::Load(old_yaml), "", a);
  flatten(YAML::Load(new_yaml), "", b);
  std::string diff;
  for (const auto& [k, v] : b) {
    auto it = a.find(k);
    if (it == a.end()) diff += "\n    " + k + ": " + v + " (not in the earlier run)";
    else if (it->second != v) diff += "\n    " + k + ": " + it->second + " -> " + v;
  }
  for (const auto& [k, v] : a)
    if (!b.count(k)) diff += "\n    " + k + ": " + v + " (only in the earlier run)";
  return diff;
}

}  // namespace lminf
