// A Hugging Face tokenizer.json: normalizer -> added-token split -> pre-tokenizer -> BPE model ->
// post-processor, and the decoder chain back to text. Supported (an Error names anything else):
//   normalizers     Sequence, Prepend, Replace (string or regex), NFC, NFD, NFKC, NFKD, Lowercase, Strip
//   pre-tokenizers  Sequence, Split (string or regex; every split behaviour, invert), ByteLevel,
//                   Metaspace, Digits, Whitespace, WhitespaceSplit
//   model           BPE (merges as "a b" or ["a", "b"]; byte_fallback, fuse_unk, ignore_merges, unk_token)
//   post-processors TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence
//   decoders        Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip
// This covers GPT-2/GPT-J, GPT-NeoX/MPT and Llama-3 (byte-level BPE with regex pre-tokenizers) and
// Llama-2/Mistral/TinyLlama (SentencePiece-style BPE with byte fallback). Regexes run on PCRE2 with
// Unicode properties (unicode_regex.h); Unicode normalization on GNU libunistring.
#pragma once

#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "framework/text/tokenizer.h"

namespace lminf {

class HfTokenizer final : public Tokenizer {
 public:
  // Reads a tokenizer.json file; `config` comes from the tokenizer_config.json beside it.
  static std::unique_ptr<HfTokenizer> from_file(const std::filesystem::path& tokenizer_json,
                                                const TokenizerConfig& config);
  // `where` names the source in errors.
  static std::unique_ptr<HfTokenizer> from_json(const nlohmann::json& j, const TokenizerConfig& config,
                                                const std::string& where);
  ~HfTokenizer() override;

  std::vector<int64_t> encode(std::string_view text, bool add_special) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  int64_t vocab_size() const override;
  int64_t bos_id() const override;
  int64_t eos_id() const override;
  std::string id_to_piece(int64_t id) const override;
  bool round_trips() const override;
  std::string description() const override;

  // The id of a vocabulary entry or added token, -1 when absent.
  int64_t token_to_id(std::string_view token) const;

  struct Impl;

 private:
  explicit HfTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// GPT-2's reversible byte -> printable character map used by byte-level BPE (bytes 33-126, 161-172
// and 174-255 map to themselves, the rest to U+0100 onwards), as UTF-8 strings indexed by byte.
const std::vector<std::string>& byte_level_alphabet();

}  // namespace lminf
