// Provenance on an HDF5 output: what made the file, as attributes of its root group.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "framework/io/h5_file.h"

namespace lminf {

// Attributes on the root of an HDF5 output: schema ("<name>" + version), lminf version, git revision,
// and every provenance field (the resolved config as YAML text).
void write_provenance_attrs(H5Writer& h5, const nlohmann::json& provenance, const std::string& schema, int64_t version);

}  // namespace lminf
