// Leveled, rank-tagged logging to stderr. The rank tag is set once by main (no other global state).
#pragma once

#include <string>

#include "framework/core/error.h"

namespace lminf {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct LogSettings {
  int rank = 0;
  int world = 1;
  LogLevel level = LogLevel::kInfo;
  bool all_ranks = false;  // by default only rank 0 prints info/debug; warnings and errors always print
};

// Process-wide settings, written once by main before any work (the one exception to "no globals":
// logging is process-local and immutable after start-up).
void set_log_settings(const LogSettings& s);
const LogSettings& log_settings();

void log_message(LogLevel level, const std::string& message);

template <class... Args>
void log_info(Args&&... args) { log_message(LogLevel::kInfo, detail::concat(std::forward<Args>(args)...)); }
template <class... Args>
void log_warn(Args&&... args) { log_message(LogLevel::kWarn, detail::concat(std::forward<Args>(args)...)); }
template <class... Args>
void log_debug(Args&&... args) { log_message(LogLevel::kDebug, detail::concat(std::forward<Args>(args)...)); }

}  // namespace lminf
