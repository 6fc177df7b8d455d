// config.json -> ModelConfig (models/model_config_json.h), through every family's parser. Input: the
// bytes of config.json. load_model_config reads it from a folder; when it yields a config, the config
// is written back with model_config_to_json and read again, which must succeed (what lminf writes,
// lminf reads) and give the same sizes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_support.h"
#include "models/model_config_json.h"

using namespace lminf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logging();
  std::filesystem::create_directories(fuzz::scratch_dir() / "model");
  fuzz::write_scratch("model/config.json", std::string(reinterpret_cast<const char*>(data), size));
  ModelConfig c;
  if (!fuzz::guarded([&] { c = load_model_config(fuzz::scratch_dir() / "model"); })) return 0;
  const nlohmann::json written = model_config_to_json(c);
  ModelConfig back;
  if (!fuzz::guarded([&] { back = model_config_from_json(written, "written config.json"); })) {
    std::fprintf(stderr, "==lminf-fuzz== FINDING: a config lminf wrote does not read back:\n%s\n", written.dump(2).c_str());
    std::abort();
  }
  if (back.hidden_size != c.hidden_size || back.n_layer != c.n_layer || back.n_head != c.n_head ||
      back.n_head_kv != c.n_head_kv || back.head_dim != c.head_dim || back.vocab_size != c.vocab_size ||
      back.model_type != c.model_type) {
    std::fprintf(stderr, "==lminf-fuzz== FINDING: config.json round trip changed the sizes:\n%s\n", written.dump(2).c_str());
    std::abort();
  }
  return 0;
}
