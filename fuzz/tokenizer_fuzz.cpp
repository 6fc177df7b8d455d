// tokenizer.json loading and encoding (framework/text/tokenizer.h: the BPE tokenizer with its
// normalizers, pre-tokenizers, post-processors and decoders). Input: TOKENIZER_JSON \0 TEXT \0
// TOKENIZER_CONFIG_JSON. The tokenizer is loaded from a folder holding tokenizer.json (and
// tokenizer_config.json when given); TEXT is encoded with and without the special tokens, the ids
// decoded back (skipping specials or not), and the pieces of a few ids looked up.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "framework/text/tokenizer.h"

namespace fs = std::filesystem;
using namespace lminf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logging();
  const auto parts = fuzz::split_input(data, size, '\0', 3);
  const fs::path dir = fuzz::scratch_dir() / "tok";
  fs::create_directories(dir);
  fuzz::write_scratch("tok/tokenizer.json", parts[0]);
  fs::remove(dir / "tokenizer_config.json");
  if (parts.size() > 2) fuzz::write_scratch("tok/tokenizer_config.json", parts[2]);
  std::unique_ptr<Tokenizer> tok;
  if (!fuzz::guarded([&] { tok = load_tokenizer(dir); })) return 0;
  const std::string text = parts.size() > 1 ? parts[1] : std::string("Hello world, 123 <|endoftext|>\n");
  tok->vocab_size();
  tok->bos_id();
  tok->eos_id();
  tok->round_trips();
  tok->description();
  for (const bool add_special : {false, true}) {
    std::vector<int64_t> ids;
    if (!fuzz::guarded([&] { ids = tok->encode(text, add_special); })) continue;
    for (const bool skip : {false, true}) fuzz::guarded([&] { tok->decode(ids, skip); });
    for (size_t i = 0; i < ids.size() && i < 8; ++i) tok->id_to_piece(ids[i]);
  }
  // ids the text did not produce: out of range, negative, the edges of the vocabulary
  const int64_t v = tok->vocab_size();
  fuzz::guarded([&] { tok->decode({0, v - 1, v, -1}, false); });
  tok->id_to_piece(-1);
  tok->id_to_piece(v);
  return 0;
}
