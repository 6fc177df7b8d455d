// The one list of model families and what follows from a family's record: looking one up by the
// config.json model_type or by name, the full validation of a config, its parameter count.
#pragma once

#include <string>
#include <vector>

#include "framework/transformer/model_config.h"
#include "models/model_family.h"

namespace lminf {

// Every family, in the order the help texts list them (the first is the default family).
const std::vector<ModelFamily>& model_families();
std::vector<std::string> family_names();  // their names: llama, mpt, gptj

// The family that reads config.json model_type `model_type`; throws
// `where: model_type "X" is not supported (supported: llama, mistral, mpt, gptj)`.
const ModelFamily& find_family(const std::string& model_type, const std::string& where);
// The family called `name` (lminf random-model --family); throws listing the names.
const ModelFamily& family_named(const std::string& name);

// The family-neutral checks, then the family's own; throws naming `where` and the key.
void validate_model_config(const ModelConfig& c, const std::string& where);
// The parameter count of a checkpoint of `c` (tied weights once).
int64_t parameter_count(const ModelConfig& c);

}  // namespace lminf
