// What the benchmarks share: wall-clock time, the peak resident set of one call, comma lists and
// "4k"-style lengths. Figures only (ratios against a baseline measured in the same run), never timed
// assertions.
//
// Peak memory: the process's peak resident set during the call minus its resident set before it
// (Linux VmHWM, reset through /proc/self/clear_refs; call large_buffers_from_mmap() first, so freed
// buffers leave the resident set at once). Inputs allocated before the call are not counted.
#pragma once

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace lminf::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A /proc/self/status field in KiB (VmRSS, VmHWM); -1 when absent.
inline int64_t status_kib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  return -1;
}

inline void reset_peak() { std::ofstream("/proc/self/clear_refs") << "5"; }

// Allocations over 256 KiB straight from mmap, so a freed buffer leaves the resident set at once.
inline void large_buffers_from_mmap() { ::mallopt(M_MMAP_THRESHOLD, 256 * 1024); }

struct Measure {
  double seconds = 0;   // best of the repetitions
  double peak_mib = 0;  // largest peak over the repetitions
};

inline Measure measure(const std::function<void()>& f, int reps) {
  Measure m{1e30, 0};
  for (int r = 0; r < reps; ++r) {
    const int64_t rss0 = status_kib("VmRSS");
    reset_peak();
    const double t0 = now_s();
    f();
    m.seconds = std::min(m.seconds, now_s() - t0);
    m.peak_mib = std::max(m.peak_mib, double(status_kib("VmHWM") - rss0) / 1024.0);
  }
  return m;
}

inline std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(std::stoll(item));
  return out;
}

// The value after option argv[i] (advancing i); exits with a message when there is none.
inline std::string option_value(int argc, char** argv, int& i) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "%s needs a value\n", argv[i]);
    std::exit(2);
  }
  return argv[++i];
}

inline std::string kib(int64_t T) { return T % 1024 == 0 ? std::to_string(T / 1024) + "k" : std::to_string(T); }

}  // namespace lminf::bench
