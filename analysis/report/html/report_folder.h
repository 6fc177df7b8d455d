// What `lminf report` reads from a run folder (output.dir of one run: config.yaml, results.json,
// HDF5 outputs, JSON-lines records, CSV tables, PNG/SVG figures, analysis/ from `lminf analyze`).
// Everything is read as found: a file that cannot be read becomes a problem listed on the page,
// never a failed report. Sweep folders: sweep_folder.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/report/csv_table.h"

namespace lminf {

inline constexpr size_t kMaxCsvRows = 500;     // larger CSV tables are listed, not shown
inline constexpr size_t kRecordsPreview = 20;  // records shown from each .jsonl file

struct FolderFile {
  std::string name;  // relative to the report's folder
  uintmax_t bytes = 0;
};

struct Figure {
  std::filesystem::path path;     // the file shown: the SVG of a stem, or its PNG when the SVG is over 256 KiB
  std::vector<std::string> also;  // the stem's other formats, e.g. {"png"}
};

struct CsvFile {
  std::string name;
  size_t rows = 0;
  std::optional<CsvTable> table;  // when it has at most kMaxCsvRows rows
};

struct H5File {
  std::string name;
  std::string schema;  // root attribute "schema" ("" when absent)
  int64_t schema_version = 0;
  std::vector<std::string> objects;  // "token_nll [4, 1024]", "factor1/" (groups end in /)
  bool analyze_input = false;        // a file `lminf analyze` reads (factor dump, token_nll)
  std::string problem;               // why it could not be read, or why analyze does not read it
};

struct RecordsFile {
  std::string name;
  int64_t count = 0;               // lines holding a JSON value
  nlohmann::ordered_json preview;  // the first kRecordsPreview records
};

// The plain contents of one folder: figures, tables, HDF5 files, records, everything listed.
struct FolderContents {
  std::filesystem::path dir;
  std::vector<Figure> figures;
  std::vector<CsvFile> csvs;
  std::vector<H5File> h5;
  std::vector<RecordsFile> records;
  std::vector<FolderFile> files;
  std::vector<std::string> problems;
};

// analysis/ of a run or a sweep: `lminf analyze`'s summary.json, tables and plots.
struct AnalysisFolder {
  std::filesystem::path dir;
  std::optional<nlohmann::ordered_json> summary;  // summary.json (absent: no analysis yet)
  FolderContents contents;
  std::string note;  // what happened about it (analysed now, skipped, failed: why)
};

struct RunFolder {
  std::filesystem::path dir;
  std::string config_text;                        // config.yaml ("" when absent)
  std::optional<nlohmann::ordered_json> results;  // results.json
  FolderContents contents;
  AnalysisFolder analysis;
};

// The files of `dir` (not recursive; temporaries and report.html skipped), `prefix` put before names.
FolderContents read_folder_contents(const std::filesystem::path& dir, const std::string& prefix);

// analysis/ under `dir`, as far as it exists.
AnalysisFolder read_analysis_folder(const std::filesystem::path& dir, const std::string& prefix);

// A run folder: config.yaml or results.json must exist (throws naming the folder otherwise).
RunFolder read_run_folder(const std::filesystem::path& dir);

// Whether `dir` is a run folder (config.yaml or results.json).
bool is_run_folder(const std::filesystem::path& dir);

}  // namespace lminf
