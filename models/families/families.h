// The record of each model family (models/model_family.h), one per file of this folder; the list that
// assembles them is models/model_families.cpp.
#pragma once

#include "models/model_family.h"

namespace lminf {

ModelFamily llama_family();  // llama.cpp: model_type llama, mistral
ModelFamily mpt_family();    // mpt.cpp: model_type mpt
ModelFamily gptj_family();   // gptj.cpp: model_type gptj

}  // namespace lminf
