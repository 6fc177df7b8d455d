// lminf: catches every error once, prints "[rank r] error: ..." and exits non-zero.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "experiments/cli.h"
#include "framework/error.h"
#include "framework/logging.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return lminf::cli_main(args);
  } catch (const lminf::Error& e) {
    std::fprintf(stderr, "[rank %d] error: %s\n", lminf::log_settings().rank, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] internal error: %s\n", lminf::log_settings().rank, e.what());
  }
  return 1;
}
