// Build provenance recorded in every output.
#pragma once

namespace lminf {
const char* version();       // project version, e.g. "0.1.0"
const char* git_revision();  // short git hash at configure time, "-dirty" if the tree had changes
}  // namespace lminf
