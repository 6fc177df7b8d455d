// The last line of `lminf`: what escaped a command, as one message for the user. An lminf::Error is
// the user's to fix and prints as it is; anything else (an InternalError, a c10::Error from ATen,
// std::bad_alloc, any std::exception) is a bug of lminf or a resource it ran out of, printed as
// "internal error" with the command it ran, without ATen's stack trace (LMINF_DEBUG=1 keeps it).
#pragma once

#include <exception>
#include <string>
#include <vector>

namespace lminf {

struct UncaughtReport {
  bool user_error = false;  // an lminf::Error
  std::string message;      // "error: ..." or "internal error: ..."
};

UncaughtReport describe_uncaught(std::exception_ptr e, const std::vector<std::string>& args);

}  // namespace lminf
