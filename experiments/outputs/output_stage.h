// The staging of a run's final outputs, so that an output folder always holds one run's outputs:
// a run writes its final files into `output.dir/.lminf-staging/` and, only when it completes, they
// are moved into output.dir (each rename atomic), the earlier run's outputs that this run did not
// write are removed, and the names published are recorded in `output.dir/.lminf-outputs.json`.
// A run that fails or is killed leaves the earlier outputs untouched; its staging folder is removed
// by the next run into the folder. Resume state (journals, stream state, checkpoints) does not go
// through the stage: it lives in output.dir itself, so a killed run resumes.
//
//   dir/.lminf-staging/            the run in progress: its final files, then .publish
//   dir/.lminf-staging/.publish    {"outputs": [...], "previous": [...]}: the run completed and is
//                                  being published; a run killed here is published by the next one
//   dir/.lminf-outputs.json        {"schema": "lminf.outputs", "schema_version": 1, "outputs": [...]}
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace lminf {

// dir/.lminf-staging
std::filesystem::path staging_dir(const std::filesystem::path& dir);

// True when `dir` holds the staging folder of a run that started and did not complete.
bool has_unfinished_run(const std::filesystem::path& dir);

// The outputs published by the run that last completed in `dir` (its .lminf-outputs.json), or
// `fallback` when the folder has no record (a folder written before staging, or none).
std::vector<std::string> published_outputs(const std::filesystem::path& dir, const std::vector<std::string>& fallback);

// At the start of a run (one process, rank 0): completes the publication of a run killed while
// publishing, removes the staging folder of a run that did not complete (its partial final files),
// and creates an empty staging folder. Returns it.
std::filesystem::path begin_staging(const std::filesystem::path& dir);

// When the run completed (rank 0, after every rank wrote its part): moves each entry of the staging
// folder into `dir` (replacing files and folders of the same name), removes the outputs of the
// earlier run (published_outputs(dir, previous_fallback)) that this run did not write, records the
// names in .lminf-outputs.json and removes the staging folder. Returns the names published.
std::vector<std::string> publish_staging(const std::filesystem::path& dir,
                                         const std::vector<std::string>& previous_fallback);

}  // namespace lminf
