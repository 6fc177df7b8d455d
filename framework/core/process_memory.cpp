#include "framework/core/process_memory.h"

#include <fstream>
#include <sstream>
#include <string>

namespace lminf {
namespace {

// "VmHWM:    123456 kB" -> bytes.
int64_t status_field(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0 || line.size() <= key.size() || line[key.size()] != ':') continue;
    std::istringstream is(line.substr(key.size() + 1));
    int64_t kb = -1;
    std::string unit;
    if (is >> kb >> unit && unit == "kB") return kb * 1024;
    return -1;
  }
  return -1;
}

// The first number in `path` (a cgroup limit); -1 when absent or "max".
int64_t number_in(const char* path) {
  std::ifstream in(path);
  int64_t v = -1;
  if (!(in >> v) || v <= 0) return -1;
  return v;
}

}  // namespace

int64_t available_memory_bytes() {
  int64_t total = -1;
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kb = 0;
  while (in >> key >> kb >> unit) {
    if (key == "MemTotal:") {
      total = kb * 1024;
      break;
    }
  }
  for (const char* limit : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const int64_t v = number_in(limit);
    if (v > 0 && (total < 0 || v < total)) total = v;
  }
  return total;
}

int64_t resident_bytes() { return status_field("VmRSS"); }
int64_t peak_resident_bytes() { return status_field("VmHWM"); }

}  // namespace lminf
