// Build and run provenance recorded in every output.
#pragma once

#include <string>

namespace lminf {
const char* version();           // project version, e.g. "0.1.0"
const char* git_revision();      // short git hash at configure time, "-dirty" if the tree had changes
const char* libtorch_version();  // the libtorch lminf was built against, e.g. "1.13.0"
std::string host_name();         // this machine's host name ("unknown" if it has none)
std::string utc_now();           // the current time, ISO 8601 in UTC: "2026-01-31T12:00:00Z"
}  // namespace lminf
