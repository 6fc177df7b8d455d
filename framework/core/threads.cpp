#include "framework/core/threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <mutex>

namespace lminf {

bool keep_blas_single_threaded() {
  static const bool found = [] {
    using SetFn = void (*)(int);
    auto fn = reinterpret_cast<SetFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (fn) fn(1);
    return fn != nullptr;
  }();
  return found;
}

int blas_threads() {
  using GetFn = int (*)();
  auto fn = reinterpret_cast<GetFn>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return fn ? fn() : -1;
}

void set_compute_threads(int n) {
  keep_blas_single_threaded();
  if (n > 0) at::set_num_threads(n);
}

int compute_threads() { return at::get_num_threads(); }

}  // namespace lminf
