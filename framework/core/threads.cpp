#include "framework/core/threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

namespace lminf {

bool set_compute_threads(int n) {
  if (n <= 0) return true;
  at::set_num_threads(n);
  using SetFn = void (*)(int);
  auto fn = reinterpret_cast<SetFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (fn) fn(n);
  return fn != nullptr;
}

int compute_threads() {
  using GetFn = int (*)();
  auto fn = reinterpret_cast<GetFn>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return fn ? fn() : at::get_num_threads();
}

}  // namespace lminf
