// The safetensors reader and the sharded-checkpoint index (framework/io/safetensors.h, checkpoint.h).
// Input: HEADER \0 DATA \0 INDEX. Three files come of it, each opened and every tensor loaded whole
// and sliced:
//   raw/model.safetensors      the input bytes as they are (length prefix, header, data: any bytes);
//   s/model.safetensors        an 8-byte little-endian length of HEADER, HEADER, DATA (so mutations of
//                              the JSON header reach its checks), read through Checkpoint::open(s/);
//   s/model.safetensors.index.json   INDEX when not empty (shards: model.safetensors, shard.safetensors,
//                              a copy of the same file), so Checkpoint::open(s/) reads the index.
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz_support.h"
#include "framework/io/checkpoint.h"
#include "framework/io/safetensors.h"

namespace fs = std::filesystem;
using namespace lminf;

namespace {

at::ScalarType read_dtype(const TensorInfo& info) {
  return at::isFloatingType(info.scalar_type) ? at::kFloat : at::kLong;
}

template <class File>
void load_everything(File& f) {
  for (const std::string& name : f.names()) {
    const TensorInfo& info = f.info(name);
    const at::ScalarType dt = read_dtype(info);
    f.load(name, dt);
    for (size_t dim = 0; dim < info.shape.size() && dim < 2; ++dim) {
      const int64_t n = info.shape[dim];
      if (n > 0) f.load_slice(name, static_cast<int64_t>(dim), n / 2, n - n / 2, dt);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logging();
  const fs::path raw = fuzz::scratch_dir() / "raw";
  const fs::path s = fuzz::scratch_dir() / "s";
  fs::create_directories(raw);
  fs::create_directories(s);

  fuzz::write_scratch("raw/model.safetensors", std::string(reinterpret_cast<const char*>(data), size));
  fuzz::guarded([&] {
    SafetensorsFile f(raw / "model.safetensors");
    f.metadata();
    load_everything(f);
  });

  const auto parts = fuzz::split_input(data, size, '\0', 3);
  const std::string& header = parts[0];
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  file += header;
  if (parts.size() > 1) file += parts[1];
  fuzz::write_scratch("s/model.safetensors", file);
  fuzz::write_scratch("s/shard.safetensors", file);
  fs::remove(s / "model.safetensors.index.json");
  if (parts.size() > 2 && !parts[2].empty()) fuzz::write_scratch("s/model.safetensors.index.json", parts[2]);
  fuzz::guarded([&] {
    Checkpoint c = Checkpoint::open(s);
    load_everything(c);
    c.bytes_read();
  });
  return 0;
}
