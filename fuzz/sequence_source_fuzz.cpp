// The data readers behind data.format (experiments/data/sequence_source.h): ids files, text files and
// JSON-lines (plain and zstd-compressed), with data.text_field, data.filter and data.max_sequences.
// Input: CONTROL \0 DATA \0 TEXT_FIELD \0 FILTER_YAML. CONTROL's first byte picks the format (mod 4:
// ids, text, jsonl, jsonl.zst -- DATA is compressed here for the last), its second the flags
// (prepend_bos, max_sequences 0 or 3). Text formats use a fixed byte-level BPE tokenizer.json.
// Every sequence is read (data_problems, open_sequence_source, read_all_sequences, report).
#include <zstd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "fuzz_support.h"
#include "experiments/data/sequence_source.h"
#include "framework/text/hf_tokenizer.h"

namespace fs = std::filesystem;
using namespace lminf;

namespace {

// A byte-level BPE (GPT-2 layout): the 256 byte symbols, three merges, <|endoftext|>.
std::string tokenizer_json() {
  const auto& alpha = byte_level_alphabet();
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[alpha[static_cast<size_t>(b)]] = b;
  const std::string sp = alpha[static_cast<size_t>(' ')];
  vocab["th"] = 256;
  vocab[sp + "t"] = 257;
  vocab["er"] = 258;
  const nlohmann::json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  const nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", {{{"id", 259}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", bl},
      {"post_processor", bl},
      {"decoder", bl},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"t h", sp + " t", "e r"}}}}};
  return j.dump();
}

const fs::path& tokenizer_dir() {
  static const fs::path dir = [] {
    fs::create_directories(fuzz::scratch_dir() / "tokenizer");
    fuzz::write_scratch("tokenizer/tokenizer.json", tokenizer_json());
    return fuzz::scratch_dir() / "tokenizer";
  }();
  return dir;
}

std::string zstd(const std::string& s) {
  std::string out(ZSTD_compressBound(s.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 1);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet_logging();
  const auto parts = fuzz::split_input(data, size, '\0', 4);
  const std::string& control = parts[0];
  static const char* const formats[] = {"ids", "text", "jsonl", "jsonl.zst"};
  DataSpec spec;
  spec.format = formats[control.empty() ? 0 : static_cast<unsigned char>(control[0]) % 4];
  const unsigned flags = control.size() > 1 ? static_cast<unsigned char>(control[1]) : 0;
  spec.prepend_bos = (flags & 1) != 0;
  spec.max_sequences = (flags & 2) ? 3 : 0;
  spec.truncation = "right";
  const std::string body = parts.size() > 1 ? parts[1] : std::string();
  const std::string name = "data." + spec.format;
  spec.path = fuzz::write_scratch(name, spec.format == "jsonl.zst" ? zstd(body) : body).string();
  if (parts.size() > 2 && !parts[2].empty()) spec.text_field = parts[2];
  if (parts.size() > 3 && !parts[3].empty()) {
    try {
      spec.filter = YAML::Load(parts[3]);
    } catch (const YAML::Exception&) {
      return 0;  // not YAML: the spec loader reports that (experiment_spec_fuzz), not the data readers
    }
  }
  if (spec.format != "ids") spec.tokenizer = tokenizer_dir().string();

  ModelConfig model;
  model.model_type = "llama";
  model.vocab_size = 300;
  model.bos_token_id = 1;
  model.eos_token_ids = {2};

  fuzz::guarded([&] { data_problems(spec, model); });
  fuzz::guarded([&] {
    std::unique_ptr<SequenceSource> src = open_sequence_source(spec, model);
    read_all_sequences(*src, spec);
    src->report().dump();
  });
  return 0;
}
