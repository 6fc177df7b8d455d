#include "framework/core/interrupt.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

namespace lminf {

namespace {

volatile std::sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  if (g_signal != 0) {  // the second one: stop now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_signal = sig;
  const char* msg = sig == SIGINT ? "\nlminf: SIGINT received: stopping at the next unit of work (again: stop now)\n"
                                  : "\nlminf: SIGTERM received: stopping at the next unit of work (again: stop now)\n";
  const ssize_t ignored = ::write(STDERR_FILENO, msg, std::strlen(msg));  // async-signal-safe
  (void)ignored;
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int interrupt_signal() { return static_cast<int>(g_signal); }

void check_interrupt() {
  const int sig = interrupt_signal();
  if (sig == 0) return;
  throw Interrupted(sig, std::string("interrupted by ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                             ": the run stopped before it completed; output.dir keeps the outputs of any earlier "
                             "run untouched and this run's resume state (run the same command again to resume a "
                             "resumable task)");
}

}  // namespace lminf
