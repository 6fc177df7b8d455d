// The families table (model_families.h). A new family adds its record here, after its file in
// families/ (docs/adding_a_family.md).
#include "models/model_families.h"

#include <algorithm>

#include "framework/core/error.h"
#include "framework/core/format.h"
#include "models/families/families.h"

namespace lminf {

const std::vector<ModelFamily>& model_families() {
  static const std::vector<ModelFamily> families = {llama_family(), mpt_family(), gptj_family()};
  return families;
}

std::vector<std::string> family_names() {
  std::vector<std::string> names;
  for (const ModelFamily& f : model_families()) names.push_back(f.name);
  return names;
}

const ModelFamily& find_family(const std::string& model_type, const std::string& where) {
  std::vector<std::string> types;
  for (const ModelFamily& f : model_families()) {
    const auto& t = f.model_types;
    if (std::find(t.begin(), t.end(), model_type) != t.end()) return f;
    types.insert(types.end(), t.begin(), t.end());
  }
  fail(where, ": model_type \"", model_type, "\" is not supported (supported: ", join_list(types), ")");
}

const ModelFamily& family_named(const std::string& name) {
  for (const ModelFamily& f : model_families())
    if (f.name == name) return f;
  fail("unknown model family \"", name, "\" (available: ", join_list(family_names()), ")");
}

void validate_model_config(const ModelConfig& c, const std::string& where) {
  const ModelFamily& family = find_family(c.model_type, where);
  c.check_sizes(where);
  family.validate(c, where);
}

int64_t parameter_count(const ModelConfig& c) {
  int64_t n = 0;
  for (const WeightSpec& w : find_family(c.model_type, "model config").weights(c)) {
    int64_t numel = 1;
    for (int64_t d : w.shape) numel *= d;
    n += numel;
  }
  return n;
}

}  // namespace lminf
