// What escaped a command, for the user (uncaught.h).
#include "experiments/cli/uncaught.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <new>

#include "framework/core/error.h"

namespace lminf {
namespace {

std::string command_line(const std::vector<std::string>& args) {
  std::string s = "lminf";
  for (const auto& a : args) s += " " + a;
  return s.size() <= 300 ? s : s.substr(0, 297) + "...";
}

bool debug() {
  const char* v = std::getenv("LMINF_DEBUG");
  return v && *v && std::string(v) != "0";
}

// ATen's message without its stack trace: the first line of what_without_backtrace().
std::string aten_message(const c10::Error& e) {
  if (debug()) return e.what();
  std::string s = e.what_without_backtrace();
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

UncaughtReport describe_uncaught(std::exception_ptr e, const std::vector<std::string>& args) {
  const std::string context = " (while running `" + command_line(args) + "`";
  const std::string report = "; this is a bug of lminf: please report it with the command and its input files)";
  try {
    std::rethrow_exception(e);
  } catch (const Error& x) {
    return {true, std::string("error: ") + x.what()};
  } catch (const InternalError& x) {
    return {false, std::string("internal error: ") + x.what() + context + report};
  } catch (const c10::Error& x) {
    return {false, "internal error: the tensor library failed: " + aten_message(x) + context + report +
                       (debug() ? "" : " (LMINF_DEBUG=1 shows its stack trace)")};
  } catch (const std::bad_alloc&) {
    return {false, "internal error: out of memory: an allocation failed" + context +
                       "; the input may declare sizes larger than this machine can hold)"};
  } catch (const std::exception& x) {
    return {false, std::string("internal error: ") + x.what() + context + report};
  } catch (...) {
    return {false, "internal error: an unknown exception" + context + report};
  }
}

}  // namespace lminf
