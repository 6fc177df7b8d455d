// Small text formats shared by messages across the libraries.
#pragma once

#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace lminf {

// "[2, 3, 4]": a tensor shape in messages.
inline std::string shape_str(c10::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace lminf
