#include "framework/core/logging.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace lminf {
namespace {
LogSettings g_settings;
std::mutex g_mutex;
const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}
}  // namespace

void set_log_settings(const LogSettings& s) { g_settings = s; }
const LogSettings& log_settings() { return g_settings; }

void log_message(LogLevel level, const std::string& message) {
  if (level < g_settings.level) return;
  if (level < LogLevel::kWarn && g_settings.rank != 0 && !g_settings.all_ranks) return;
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&now));
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_settings.world > 1) {
    std::fprintf(stderr, "%s [rank %d] %s: %s\n", stamp, g_settings.rank, level_name(level), message.c_str());
  } else {
    std::fprintf(stderr, "%s %s: %s\n", stamp, level_name(level), message.c_str());
  }
  std::fflush(stderr);
}

}  // namespace lminf
