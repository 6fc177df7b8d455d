// The lminf command line (main.cpp only catches and reports).
#pragma once

#include <string>
#include <vector>

namespace lminf {

// Runs `lminf ARGS...`; returns the exit status. Throws lminf::Error for user errors.
int cli_main(const std::vector<std::string>& args);

std::string cli_usage();

}  // namespace lminf
