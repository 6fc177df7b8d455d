#include "experiments/outputs/outputs.h"

#include "framework/io/atomic_file.h"
#include "framework/core/error.h"
#include "framework/core/version.h"

namespace lminf {
namespace fs = std::filesystem;

void prepare_output_dir(const fs::path& dir, const std::vector<std::string>& outputs, bool overwrite) {
  if (dir.empty()) fail("output.dir is empty (set output.dir to the folder that receives the results)");
  ensure_writable_dir(dir, "output.dir");
  if (overwrite) return;
  for (const auto& name : outputs) {
    if (fs::exists(dir / name))
      fail("output.dir: ", (dir / name).string(),
           " already exists from an earlier run (choose another output.dir, or set output.overwrite: true "
           "to replace it)");
  }
}

void write_provenance_attrs(H5Writer& h5, const nlohmann::json& provenance, const std::string& schema, int64_t version) {
  h5.set_attr("/", "schema", schema);
  h5.set_attr("/", "schema_version", version);
  h5.set_attr("/", "lminf_version", std::string(lminf::version()));
  for (auto it = provenance.begin(); it != provenance.end(); ++it) {
    const auto& v = it.value();
    if (v.is_string()) h5.set_attr("/", it.key(), v.get<std::string>());
    else if (v.is_number_integer()) h5.set_attr("/", it.key(), v.get<int64_t>());
    else if (v.is_number()) h5.set_attr("/", it.key(), v.get<double>());
    else h5.set_attr("/", it.key(), v.dump());
  }
}

void write_results_json(const fs::path& path, const nlohmann::json& results, const nlohmann::json& provenance) {
  nlohmann::json j;
  j["schema"] = "lminf.results";
  j["schema_version"] = 1;
  for (auto it = results.begin(); it != results.end(); ++it) j[it.key()] = it.value();
  j["provenance"] = provenance;
  write_file_atomic(path, j.dump(2) + "\n");
}

}  // namespace lminf
