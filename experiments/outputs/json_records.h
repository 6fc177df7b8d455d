// Per-sample JSON records as the record tasks (generation, qa, passkey) and their journals
// (experiments/outputs/record_journal.h) move them: merged over the data-parallel replicas, and
// written one record per line.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "parallel/communicator.h"

namespace lminf {

// Data-parallel merge: every replica passes its records (a JSON array); every replica gets the
// concatenation over replicas in rank order. One all_gather of lengths and one of bytes.
nlohmann::json gather_json_arrays(Communicator& dp, const nlohmann::json& mine);

// The records of a JSON array ordered by the integer field `key` (a stable sort: equal keys keep
// their order), as the final outputs list them whatever replica made them.
std::vector<nlohmann::json> sorted_by(const nlohmann::json& records, const std::string& key);

// Writes one JSON record per line to `path` atomically (temporary file, then rename).
void write_jsonl_atomic(const std::filesystem::path& path, const nlohmann::json& records);

}  // namespace lminf
