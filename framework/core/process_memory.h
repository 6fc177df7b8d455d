// This process's memory as the kernel counts it (/proc/self/status): resident now (VmRSS) and the
// peak since start (VmHWM). Mapped checkpoint pages that were read count too. -1 where unavailable.
#pragma once

#include <cstdint>

namespace lminf {

int64_t resident_bytes();
int64_t peak_resident_bytes();

}  // namespace lminf
