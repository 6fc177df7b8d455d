// Errors thrown inside the libraries. main() catches them once and prints "[rank r] message".
// A message names the file or key at fault and says the fix.
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

}  // namespace lminf
