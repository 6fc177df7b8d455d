#include "framework/io/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/core/format.h"

namespace lminf {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

std::string shard_file_name(int i, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i, n);
  return buf;
}

void write_text_atomic(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      fail(path.string(), ": write failed (check the folder is writable and the disk has space)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    fail(path.string(), ": cannot rename ", tmp.string(), " into place (", why, ")");
  }
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& dir) {
  const std::string d = dir.string();
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail(d, ": no such folder (pass a Hugging Face model folder)");
  if (!fs::is_directory(dir, ec))
    fail(d, ": not a folder (pass the Hugging Face model folder that holds config.json and model.safetensors)");

  Checkpoint ck;
  ck.dir_ = dir;
  const fs::path index_path = dir / kIndexName;
  const fs::path single_path = dir / kSingleName;

  if (fs::exists(index_path, ec)) {
    const std::string ip = index_path.string();
    const json index = read_json_file(index_path, " (re-download the checkpoint)");
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail(ip, ": has no \"weight_map\" object (re-download the checkpoint or re-save it with "
               "save_pretrained(safe_serialization=True))");
    const json& wm = index["weight_map"];
    if (wm.empty()) fail(ip, ": \"weight_map\" is empty (re-download the checkpoint)");

    std::map<std::string, size_t> shard_ids;  // shard file name -> index into shards_
    for (auto it = wm.begin(); it != wm.end(); ++it) {
      if (!it->is_string())
        fail(ip, ": weight_map entry for tensor '", it.key(), "' is not a file name string (re-download the checkpoint)");
      const std::string shard = it->get<std::string>();
      auto found = shard_ids.find(shard);
      if (found == shard_ids.end()) {
        const fs::path shard_path = dir / shard;
        if (fs::path(shard).is_absolute() || !fs::is_regular_file(shard_path, ec))
          fail(ip, ": names shard '", shard, "', which is missing from ", d,
               " (the download is incomplete: re-download the checkpoint with every model-*-of-*.safetensors file)");
        found = shard_ids.emplace(shard, ck.shards_.size()).first;
        ck.shards_.emplace_back(shard_path);
      }
      if (!ck.shards_[found->second].has(it.key()))
        fail(ip, ": maps tensor '", it.key(), "' to shard '", shard,
             "', which does not contain it (the index and the shards disagree: re-download or re-save the checkpoint)");
      ck.shard_of_[it.key()] = found->second;
    }
    return ck;
  }

  if (fs::exists(single_path, ec)) {
    ck.shards_.emplace_back(single_path);
    for (const auto& name : ck.shards_[0].names()) ck.shard_of_[name] = 0;
    return ck;
  }

  std::string found;
  for (const char* legacy : {"pytorch_model.bin", "pytorch_model.bin.index.json", "model.pth", "consolidated.00.pth"})
    if (fs::exists(dir / legacy, ec)) {
      found = std::string(" (found ") + legacy + ")";
      break;
    }
  fail(d, ": no model.safetensors or model.safetensors.index.json", found,
       " (lminf reads Hugging Face safetensors checkpoints; convert .bin/.pth checkpoints with transformers: "
       "AutoModelForCausalLM.from_pretrained(\"", d, "\").save_pretrained(\"", d, "\", safe_serialization=True))");
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(shard_of_.size());
  for (const auto& kv : shard_of_) out.push_back(kv.first);
  return out;
}

size_t Checkpoint::shard_index(const std::string& name) const {
  auto it = shard_of_.find(name);
  if (it != shard_of_.end()) return it->second;
  std::ostringstream os;
  for (const auto& c : closest_names(name, names())) os << (os.tellp() ? ", '" : "'") << c << "'";
  fail(dir_.string(), ": no tensor '", name, "' in the checkpoint (", shard_of_.size(),
       " tensors; closest: ", shard_of_.empty() ? std::string("none") : os.str(),
       "; check the tensor name against the model architecture in config.json)");
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  return shards_[shard_index(name)].info(name);
}

at::Tensor Checkpoint::load(const std::string& name, at::ScalarType dtype) {
  return shards_[shard_index(name)].load(name, dtype);
}

at::Tensor Checkpoint::load_slice(const std::string& name, int64_t dim, int64_t start, int64_t length,
                                  at::ScalarType dtype) {
  return shards_[shard_index(name)].load_slice(name, dim, start, length, dtype);
}

uint64_t Checkpoint::bytes_read() const {
  uint64_t n = 0;
  for (const auto& s : shards_) n += s.bytes_read();
  return n;
}

void Checkpoint::check_shape(const std::string& name, const std::vector<int64_t>& expected) const {
  const TensorInfo& ti = info(name);
  if (ti.shape != expected)
    fail(dir_.string(), ": tensor '", name, "' has shape ", shape_str(ti.shape), " but config.json implies ",
         shape_str(expected), " (the checkpoint does not match its config.json)");
}

// --- writer -------------------------------------------------------------------------------------

void write_checkpoint(const fs::path& dir, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      int n_shards) {
  const std::string d = dir.string();
  if (n_shards < 1 || static_cast<size_t>(n_shards) > std::max<size_t>(tensors.size(), 1))
    fail(d, ": cannot write ", tensors.size(), " tensors into ", n_shards,
         " shards (use 1 <= n_shards <= the number of tensors)");
  for (size_t i = 0; i < tensors.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (tensors[i].first == tensors[j].first)
        fail(d, ": tensor '", tensors[i].first, "' given twice (tensor names must be unique)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(d, ": cannot create the folder (", ec.message(), ")");

  if (n_shards == 1) {
    write_safetensors(dir / kSingleName, tensors, {{"format", "pt"}});
    fs::remove(dir / kIndexName, ec);  // a stale index would shadow model.safetensors
    return;
  }

  // Largest tensor first, each to the shard holding the fewest bytes so far; the given order is
  // kept within a shard.
  auto nbytes = [](const at::Tensor& t) { return static_cast<uint64_t>(t.numel()) * t.element_size(); };
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return nbytes(tensors[a].second) > nbytes(tensors[b].second);
  });
  std::vector<uint64_t> load(n_shards, 0);
  std::vector<int> shard_of(tensors.size());
  for (size_t k = 0; k < order.size(); ++k) {
    // The first n_shards tensors go one per shard, so no shard is empty.
    int s = k < static_cast<size_t>(n_shards)
                ? static_cast<int>(k)
                : static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    shard_of[order[k]] = s;
    load[s] += nbytes(tensors[order[k]].second);
  }

  json weight_map = json::object();
  uint64_t total = 0;
  for (int s = 0; s < n_shards; ++s) {
    std::vector<std::pair<std::string, at::Tensor>> part;
    const std::string file = shard_file_name(s + 1, n_shards);
    for (size_t i = 0; i < tensors.size(); ++i)
      if (shard_of[i] == s) {
        part.push_back(tensors[i]);
        weight_map[tensors[i].first] = file;
        total += nbytes(tensors[i].second);
      }
    write_safetensors(dir / file, part, {{"format", "pt"}});
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_text_atomic(dir / kIndexName, index.dump(2) + "\n");
}

}  // namespace lminf
