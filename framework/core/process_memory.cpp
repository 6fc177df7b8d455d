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

}  // namespace

int64_t resident_bytes() { return status_field("VmRSS"); }
int64_t peak_resident_bytes() { return status_field("VmHWM"); }

}  // namespace lminf
