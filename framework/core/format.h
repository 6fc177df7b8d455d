// Small text formats shared by messages across the libraries.
#pragma once

#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lminf {

// "a, b, c": names listed in a message (the choices of a key, the registered variants, ...).
inline std::string join_list(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

// "[2, 3, 4]": a tensor shape in messages.
inline std::string shape_str(c10::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace lminf
