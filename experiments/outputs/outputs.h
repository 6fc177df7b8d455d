// Output folders and files: provenance on everything, atomic writes, no silent overwrite.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/io/h5_file.h"
#include "framework/io/h5_provenance.h"  // write_provenance_attrs

namespace lminf {

// Creates output.dir if needed and checks it is writable; refuses (naming the file and the fix) when
// one of `outputs` already exists there and overwrite is false.
void prepare_output_dir(const std::filesystem::path& dir, const std::vector<std::string>& outputs, bool overwrite);

// results.json = {"schema": "lminf.results", "schema_version": 1, ...results, "provenance": {...}}, atomically.
void write_results_json(const std::filesystem::path& path, const nlohmann::json& results, const nlohmann::json& provenance);

// token_nll.h5 (schema lminf.token_nll, docs/hdf5.md), atomically: token_nll [n, longest] float32 (NaN
// past each row's end) and lengths [n] int64, with provenance; bucket > 0 is recorded as an attribute.
void write_token_nll_h5(const std::filesystem::path& path, const at::Tensor& nll, const std::vector<int64_t>& lengths,
                        const nlohmann::json& provenance, int64_t bucket = 0);

}  // namespace lminf
