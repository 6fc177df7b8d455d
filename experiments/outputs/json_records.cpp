#include "experiments/outputs/json_records.h"

#include <algorithm>
#include <cstring>

#include "framework/io/atomic_file.h"

namespace lminf {

nlohmann::json gather_json_arrays(Communicator& dp, const nlohmann::json& mine) {
  if (dp.size() == 1) return mine;
  const std::string bytes = mine.dump();
  at::Tensor len = at::full({1}, static_cast<int64_t>(bytes.size()), at::kLong);
  at::Tensor lens = dp.all_gather(len, 0);  // [dp]
  const int64_t longest = lens.max().item<int64_t>();
  at::Tensor buf = at::zeros({1, std::max<int64_t>(longest, 1)}, at::kByte);
  std::memcpy(buf.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  at::Tensor all = dp.all_gather(buf, 0).contiguous();  // [dp, longest]
  nlohmann::json merged = nlohmann::json::array();
  for (int64_t r = 0; r < all.size(0); ++r) {
    const char* p = reinterpret_cast<const char*>(all[r].data_ptr<uint8_t>());
    const nlohmann::json part = nlohmann::json::parse(std::string(p, static_cast<size_t>(lens[r].item<int64_t>())));
    for (const auto& rec : part) merged.push_back(rec);
  }
  return merged;
}

std::vector<nlohmann::json> sorted_by(const nlohmann::json& records, const std::string& key) {
  std::vector<nlohmann::json> sorted(records.begin(), records.end());
  std::stable_sort(sorted.begin(), sorted.end(), [&](const nlohmann::json& a, const nlohmann::json& b) {
    return a[key].get<int64_t>() < b[key].get<int64_t>();
  });
  return sorted;
}

void write_jsonl_atomic(const std::filesystem::path& path, const nlohmann::json& records) {
  std::string out;
  for (const auto& r : records) {
    out += r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
  }
  write_file_atomic(path, out);
}

}  // namespace lminf
