#include "experiments/outputs/output_stage.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "framework/io/atomic_file.h"

namespace lminf {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kStaging = ".lminf-staging";
constexpr const char* kPublish = ".publish";
constexpr const char* kRecord = ".lminf-outputs.json";

// Names in the staging folder that are not outputs: the publish marker, folders moved aside while
// being replaced, and temporaries of writers that never committed.
bool is_output_name(const std::string& name) {
  return name != kPublish && name.rfind(".replaced-", 0) != 0 && name.find(".tmp-") == std::string::npos;
}

std::vector<std::string> string_list(const json& j) {
  std::vector<std::string> v;
  if (j.is_array())
    for (const auto& e : j)
      if (e.is_string()) v.push_back(e.get<std::string>());
  return v;
}

// A name recorded in a file the user could edit must stay inside the folder.
bool plain_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

void remove_entry(const fs::path& p, const char* why) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) fail("output.dir: cannot remove ", p.string(), " (", why, "): ", ec.message(), " (remove it by hand)");
}

void rename_or_fail(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec)
    fail("output.dir: cannot move ", from.string(), " to ", to.string(), ": ", ec.message(),
         " (the completed outputs stay in ", from.parent_path().string(), "; the next run into the folder "
         "publishes them, or move them by hand)");
}

// Steps 2.. of a publication whose marker is written: move, record, remove stale, drop the stage.
void finish_publish(const fs::path& dir, const std::vector<std::string>& outputs,
                    const std::vector<std::string>& previous) {
  const fs::path stage = staging_dir(dir);
  for (const auto& name : outputs) {
    const fs::path from = stage / name, to = dir / name;
    if (!fs::exists(fs::symlink_status(from))) continue;  // moved before a kill
    const bool to_exists = fs::exists(fs::symlink_status(to));
    if (to_exists && ((fs::is_directory(to) && !fs::is_symlink(to)) || fs::is_directory(from))) {
      // rename() replaces a folder only by an empty one, and a file only by a file: move the old one aside first.
      const fs::path aside = stage / (".replaced-" + name);
      remove_entry(aside, "a folder set aside by an interrupted publication");
      rename_or_fail(to, aside);
    }
    rename_or_fail(from, to);
  }
  json rec;
  rec["schema"] = "lminf.outputs";
  rec["schema_version"] = 1;
  rec["outputs"] = outputs;
  write_file_atomic(dir / kRecord, rec.dump(2) + "\n");
  const std::set<std::string> mine(outputs.begin(), outputs.end());
  for (const auto& name : previous) {
    if (mine.count(name) || !plain_name(name) || !fs::exists(fs::symlink_status(dir / name))) continue;
    remove_entry(dir / name, "an output of the earlier run that this run does not write");
    log_info("output.dir: removed ", (dir / name).string(), " (written by an earlier run, not by this one)");
  }
  remove_entry(stage, "the staging folder of the published run");
}

}  // namespace

fs::path staging_dir(const fs::path& dir) { return dir / kStaging; }

bool has_unfinished_run(const fs::path& dir) { return fs::is_directory(staging_dir(dir)); }

std::vector<std::string> published_outputs(const fs::path& dir, const std::vector<std::string>& fallback) {
  const fs::path p = dir / kRecord;
  if (!fs::exists(p)) return fallback;
  try {
    std::ifstream in(p);
    return string_list(json::parse(in).at("outputs"));
  } catch (const std::exception& e) {
    log_warn("output.dir: ", p.string(), " is unreadable (", e.what(), "); taking the outputs of the earlier run "
             "to be this task's");
    return fallback;
  }
}

fs::path begin_staging(const fs::path& dir) {
  const fs::path stage = staging_dir(dir);
  if (fs::exists(stage / kPublish)) {
    json marker;
    try {
      std::ifstream in(stage / kPublish);
      marker = json::parse(in);
    } catch (const std::exception&) {
      marker = json();  // written atomically, so only a hand-edited marker gets here
    }
    if (marker.is_object()) {
      log_info("output.dir: ", dir.string(), " holds a completed run killed while its outputs were moved in; "
               "publishing them first");
      finish_publish(dir, string_list(marker["outputs"]), string_list(marker["previous"]));
    }
  }
  if (fs::exists(stage)) {
    log_info("output.dir: removing the partial final files of a run that did not complete (",
             stage.string(), "); its resume state, if any, is kept");
    remove_entry(stage, "the staging folder of a run that did not complete");
  }
  std::error_code ec;
  fs::create_directories(stage, ec);
  if (ec) fail("output.dir: cannot create ", stage.string(), ": ", ec.message(), " (set output.dir to a writable folder)");
  return stage;
}

std::vector<std::string> publish_staging(const fs::path& dir, const std::vector<std::string>& previous_fallback) {
  const fs::path stage = staging_dir(dir);
  LMINF_CHECK(fs::is_directory(stage), "publish_staging without begin_staging: ", stage.string());
  std::vector<std::string> outputs;
  for (const auto& e : fs::directory_iterator(stage)) {
    const std::string name = e.path().filename().string();
    if (is_output_name(name)) outputs.push_back(name);
  }
  std::sort(outputs.begin(), outputs.end());
  std::vector<std::string> previous = published_outputs(dir, previous_fallback);
  json marker;
  marker["outputs"] = outputs;
  marker["previous"] = previous;
  write_file_atomic(stage / kPublish, marker.dump() + "\n");  // from here on the run counts as complete
  finish_publish(dir, outputs, previous);
  return outputs;
}

}  // namespace lminf
