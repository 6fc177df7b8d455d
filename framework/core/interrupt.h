// SIGINT and SIGTERM as a request to stop: the first one is noted (and said on stderr) and honoured
// at the next unit of work (Progress::add and the loops that call check_interrupt()), by throwing
// Interrupted, so the run unwinds as after any error: temporaries removed, resume state and the
// earlier outputs kept. A second signal ends the process at once (what SIGKILL also leaves resumable).
#pragma once

#include "framework/core/error.h"

namespace lminf {

class Interrupted : public Error {
 public:
  Interrupted(int signal, const std::string& what) : Error(what), signal_(signal) {}
  int signal() const { return signal_; }  // SIGINT or SIGTERM; main exits with 128 + signal

 private:
  int signal_;
};

// Installs the handlers of SIGINT and SIGTERM (main, once, before any work).
void install_interrupt_handlers();

// The signal received (0: none).
int interrupt_signal();

// Throws Interrupted when a signal was received.
void check_interrupt();

}  // namespace lminf
