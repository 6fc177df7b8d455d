// Errors thrown inside the libraries. main() catches them once and prints "[rank r] message".
//   fail(...)        what a user can fix: the message names the file or key at fault and says the fix.
//   LMINF_CHECK(...) a broken invariant of lminf itself (a bug, never the user's input): throws an
//                    InternalError naming the source file and line; main() prints it as "internal error".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace lminf {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// fail("model.path: ", p, " does not exist (set model.path to a Hugging Face model folder)")
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(detail::concat(std::forward<Args>(args)...));
}

// A broken invariant: not the user's to fix. Carries the source location of the failed check.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {
template <class... Args>
[[noreturn]] void check_failed(const char* file, int line, const char* condition, Args&&... args) {
  throw InternalError(concat(file, ":", line, ": check failed: ", condition, sizeof...(args) ? ": " : "",
                             std::forward<Args>(args)...));
}
}  // namespace detail

}  // namespace lminf

// LMINF_CHECK(rows == n, "gathered ", rows, " rows, expected ", n): throws lminf::InternalError
// ("FILE:LINE: check failed: rows == n: gathered ...") when the condition is false.
#define LMINF_CHECK(condition, ...)                                                      \
  do {                                                                                   \
    if (!(condition)) ::lminf::detail::check_failed(__FILE__, __LINE__, #condition, ##__VA_ARGS__); \
  } while (0)
