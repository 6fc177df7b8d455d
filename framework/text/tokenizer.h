// The Tokenizer seam: text <-> token ids for a model folder. Two implementations:
//   - HfTokenizer (hf_tokenizer.h): a Hugging Face tokenizer.json -- byte-level BPE (GPT-2, GPT-J,
//     GPT-NeoX/MPT, Llama-3) and SentencePiece-style BPE with byte fallback (Llama-2, Mistral);
//   - SentencePieceTokenizer (sentencepiece_tokenizer.h): a SentencePiece tokenizer.model through
//     Debian's libsentencepiece, loaded in its own link namespace.
// load_tokenizer() picks one from a folder; tokenizer_config.json supplies BOS/EOS and whether
// encode(text, true) adds them (docs/tokenizers.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lminf {

struct ModelConfig;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Token ids of `text` (valid UTF-8: an Error naming the byte offset otherwise). Added and special
  // tokens written in the text (e.g. "<|eot_id|>") are recognised as those tokens, as Hugging Face
  // tokenizers do. add_special: also add the tokens the tokenizer adds around every text (BOS/EOS
  // per tokenizer_config.json's add_bos_token/add_eos_token, else the tokenizer.json post-processor).
  virtual std::vector<int64_t> encode(std::string_view text, bool add_special) const = 0;
  // The text of `ids` (Error for an id outside the vocabulary). Special tokens are written as their
  // text unless skip_special. Bytes that do not form UTF-8 become U+FFFD.
  virtual std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const = 0;
  // One more than the largest id the tokenizer can produce.
  virtual int64_t vocab_size() const = 0;
  virtual int64_t bos_id() const = 0;  // -1: none
  virtual int64_t eos_id() const = 0;  // -1: none
  // The vocabulary entry of an id (raw: "▁the", "Ġthe", "<0x0A>"); "" outside the vocabulary.
  virtual std::string id_to_piece(int64_t id) const = 0;
  // Whether decode(encode(x, false)) == x for every valid UTF-8 x without special-token text
  // (false when normalization or unknown tokens lose information).
  virtual bool round_trips() const = 0;
  // "tokenizer.json (byte-level BPE, 128256 ids) in DIR", for logs and errors.
  virtual std::string description() const = 0;
};

// The tokenizer_config.json keys lminf uses (all optional).
struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, unk_token;
  std::optional<bool> add_bos_token, add_eos_token;
  std::filesystem::path source;  // "" when there was no file

  // Reads DIR/tokenizer_config.json when it exists (an empty config otherwise). Tokens may be strings
  // or AddedToken objects {"content": ...}. Malformed JSON is an Error naming the file and line.
  static TokenizerConfig from_dir(const std::filesystem::path& dir);
};

// Loads the tokenizer of a model or tokenizer folder: DIR/tokenizer.json when present, else
// DIR/tokenizer.model (SentencePiece). `path` may also name one of those files directly. Errors name
// the folder and the files looked for.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

// Throws when the tokenizer can produce ids the model has no embedding for (tokenizer vocab_size >
// the model's vocab_size). A model may have more rows than the tokenizer (padded vocabularies).
void check_tokenizer_fits(const Tokenizer& tok, const ModelConfig& model, const std::string& where);

}  // namespace lminf
