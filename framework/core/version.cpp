#include "framework/core/version.h"

#include <torch/version.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

namespace lminf {
const char* version() { return LMINF_VERSION; }
const char* git_revision() { return LMINF_GIT_REV; }
const char* libtorch_version() { return TORCH_VERSION; }

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
}  // namespace lminf
