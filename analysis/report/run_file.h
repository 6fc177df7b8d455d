// The inputs of `lminf analyze`: a factor dump (schema "lminf.factors", docs/hdf5.md) or a perplexity
// output (schema "lminf.token_nll"). Opening one checks its schema name and version and refuses, saying
// why, anything this lminf does not understand.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "framework/io/h5_file.h"

namespace lminf {

enum class RunFileKind { kFactors, kTokenNll };

// The schemas analyze reads, with the newest version it understands.
struct KnownSchema {
  const char* name;
  int64_t version;
  RunFileKind kind;
};
const std::vector<KnownSchema>& known_schemas();

struct RunFile {
  RunFileKind kind;
  std::filesystem::path path;
  std::string label;    // from --label, else "<name> (<variant>)"
  std::string variant;  // root attribute "variant" ("" if absent)
  int64_t trained_length = 0;  // max_position_embeddings (factor dumps; 0 if unknown)
  bool complete = true;        // factor dumps: root attribute complete
  std::shared_ptr<H5Reader> h5;
};

// Opens `path`; label "" picks the default. Throws naming the file and the reason (missing schema,
// a schema analyze does not read, a version newer than it understands).
RunFile open_run_file(const std::filesystem::path& path, const std::string& label);

}  // namespace lminf
