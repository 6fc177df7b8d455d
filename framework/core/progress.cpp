#include "framework/core/progress.h"

#include <unistd.h>

#include <cstdio>

#include "framework/core/interrupt.h"

namespace lminf {

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled, double interval_s)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      tty_(::isatty(2) != 0),
      interval_s_(interval_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && done_ > 0) finish();
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

void Progress::add(int64_t n) {
  done_ += n;
  check_interrupt();  // a SIGINT / SIGTERM stops the run between two units of work
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_draw_).count() >= interval_s_) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::add_resumed(int64_t n) {
  done_ += n;
  resumed_ += n;
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final) {
  const double el = elapsed_s();
  const double rate = el > 0 ? static_cast<double>(done_ - resumed_) / el : 0.0;
  char line[256];
  if (total_ > 0) {
    const double frac = static_cast<double>(done_) / static_cast<double>(total_);
    const std::string eta = rate > 0 && !final ? format_duration(static_cast<double>(total_ - done_) / rate) : "-";
    std::snprintf(line, sizeof line, "%s: %lld/%lld %s (%.1f%%) %.1f %s/s elapsed %s eta %s", label_.c_str(),
                  static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(), 100.0 * frac, rate,
                  unit_.c_str(), format_duration(el).c_str(), eta.c_str());
  } else {
    std::snprintf(line, sizeof line, "%s: %lld %s %.1f %s/s elapsed %s", label_.c_str(),
                  static_cast<long long>(done_), unit_.c_str(), rate, unit_.c_str(), format_duration(el).c_str());
  }
  if (tty_) std::fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
  else std::fprintf(stderr, "%s\n", line);
  std::fflush(stderr);
}

}  // namespace lminf
