// Progress of long work: one line on stderr (rank 0 only) with count, rate and ETA, redrawn at most
// every `interval` seconds; plain lines instead of carriage returns when stderr is not a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lminf {

class Progress {
 public:
  // total <= 0: unknown (no ETA). `unit` names what is counted ("tok", "seq").
  Progress(std::string label, int64_t total, std::string unit, bool enabled, double interval_s = 2.0);
  ~Progress();
  void add(int64_t n);
  // Counts n units done by an earlier, resumed run: they count towards done/total but not the rate.
  void add_resumed(int64_t n);
  void finish();
  int64_t done() const { return done_; }
  double elapsed_s() const;
  static std::string format_duration(double seconds);

 private:
  void draw(bool final);
  std::string label_, unit_;
  int64_t total_, done_ = 0, resumed_ = 0;
  bool enabled_, tty_, finished_ = false;
  double interval_s_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace lminf
