// This process's memory as the kernel counts it (/proc/self/status): resident now (VmRSS) and the
// peak since start (VmHWM). Mapped checkpoint pages that were read count too. -1 where unavailable.
// What it may use at most, to refuse before an allocation the kernel would end with an OOM kill.
#pragma once

#include <cstdint>

namespace lminf {

int64_t resident_bytes();
int64_t peak_resident_bytes();
// The memory this process may use: the machine's (MemTotal of /proc/meminfo), or the cgroup's limit
// (memory.max, v2; memory.limit_in_bytes, v1) when that is smaller. -1 where unknown.
int64_t available_memory_bytes();

}  // namespace lminf
