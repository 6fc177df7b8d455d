// RULER's scoring (NVIDIA/RULER scripts/eval/evaluate.py and scripts/eval/synthetic/constants.py):
// a prediction is stripped, its control characters (U+0000..U+001F) become newlines and it is
// stripped again; a reference is found when it is a case-insensitive substring of the prediction
// (ASCII case folding). string_match_all scores a sample by the fraction of its references found,
// string_match_part (the qa tasks) by 1 when any is found. A task's score at a length is 100 times the
// mean over its samples (RULER's percentages, not rounded here).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lminf {

std::string ruler_postprocess(const std::string& prediction);
// Per-sample scores in [0, 1] of an already postprocessed prediction.
double string_match_all(const std::string& prediction, const std::vector<std::string>& references);
double string_match_part(const std::string& prediction, const std::vector<std::string>& references);

// The summary of per-sample records ({task, length, score in [0, 1]}), in the order of `tasks` and
// `lengths`:
//   scores:           [{task, length, score, num_samples}] (score: 100 x the mean; cells without a
//                     sample are left out)
//   averages:         [{length, average}] (the mean of the tasks' scores at that length)
//   effective_length: {effective_length, threshold} (ruler_effective_length)
nlohmann::json summarize_ruler(const nlohmann::json& records, const std::vector<std::string>& tasks,
                               const std::vector<int64_t>& lengths, double threshold);

// RULER's effective length: the largest length L such that the average is >= threshold at L and at
// every shorter length; 0 when the shortest length is already below it. `averages` in any order.
int64_t ruler_effective_length(const nlohmann::json& averages, double threshold);

}  // namespace lminf
