#include "framework/core/version.h"

namespace lminf {
const char* version() { return LMINF_VERSION; }
const char* git_revision() { return LMINF_GIT_REV; }
}  // namespace lminf
