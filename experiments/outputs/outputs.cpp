#include "experiments/outputs/outputs.h"

#include "framework/io/atomic_file.h"
#include "framework/core/error.h"

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

void write_results_json(const fs::path& path, const nlohmann::json& results, const nlohmann::json& provenance) {
  nlohmann::json j;
  j["schema"] = "lminf.results";
  j["schema_version"] = 1;
  for (auto it = results.begin(); it != results.end(); ++it) j[it.key()] = it.value();
  j["provenance"] = provenance;
  write_file_atomic(path, j.dump(2) + "\n");
}

void write_token_nll_h5(const fs::path& path, const at::Tensor& nll, const std::vector<int64_t>& lengths,
                        const nlohmann::json& provenance, int64_t bucket) {
  H5Writer h5(path);
  h5.write("token_nll", nll);
  h5.write("lengths", at::tensor(lengths, at::kLong));
  write_provenance_attrs(h5, provenance, "lminf.token_nll", 1);
  if (bucket > 0) h5.set_attr("/", "bucket", bucket);
  h5.commit();
}

}  // namespace lminf
