// A SentencePiece tokenizer.model (Llama-1/2, Mistral, and lminf's own trained tokenizers) through
// Debian's libsentencepiece. libsentencepiece carries its own protobuf 3.14 while libtorch links
// protobuf 3.21: both in one link namespace crash the process at start-up. So sentencepiece lives in
// liblminf_spm_shim.so (framework/text/spm_shim/), a plain C interface opened with
// dlmopen(LM_ID_NEWLM, ...): its own link namespace with its own protobuf, libstdc++ and libc.
// The shim is found (in this order) next to the running executable, in ../lib/lminf/ beside it (an
// installed tree), and at the absolute path it was built to.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "framework/text/tokenizer.h"

namespace lminf {

class SpmLibrary;

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Loads a .model file; `config` comes from the tokenizer_config.json beside it.
  SentencePieceTokenizer(const std::filesystem::path& model_file, const TokenizerConfig& config);
  ~SentencePieceTokenizer() override;

  // Special pieces written in the text (<s>, </s>, <unk> and other control symbols) become their ids
  // (as Hugging Face's LlamaTokenizer does); the text between them is encoded by SentencePiece, each
  // run with its own dummy prefix. add_special adds BOS (add_bos_token, default true when the model
  // has a BOS) and EOS (add_eos_token, default false).
  std::vector<int64_t> encode(std::string_view text, bool add_special) const override;
  // Runs of ordinary ids are decoded by SentencePiece; control ids are written as their piece.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  int64_t vocab_size() const override { return n_pieces_; }
  int64_t bos_id() const override { return bos_; }
  int64_t eos_id() const override { return eos_; }
  std::string id_to_piece(int64_t id) const override;
  bool round_trips() const override;
  std::string description() const override;

  // The encoding SentencePiece itself gives (no special-token splitting, no BOS/EOS): what
  // `spm_encode --output_format=id` prints for one line.
  std::vector<int64_t> encode_plain(std::string_view text) const;

 private:
  const SpmLibrary& lib_;
  void* model_ = nullptr;
  std::string where_;
  int64_t n_pieces_ = 0, bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, byte_fallback_ = false;
  std::vector<char> control_;                          // per id: control or unknown piece
  std::vector<std::pair<std::string, int64_t>> specials_;  // special pieces matched in text, longest first
};

// Options of `lminf train-tokenizer` (SentencePiece's trainer, through the shim).
struct SpmTrainOptions {
  std::vector<std::filesystem::path> inputs;  // text files, one sentence per line
  std::filesystem::path output_dir;           // receives tokenizer.model, tokenizer.vocab, tokenizer_config.json
  int64_t vocab_size = 8000;
  std::string model_type = "bpe";             // bpe | unigram
  bool byte_fallback = true;                  // unknown characters -> <0xNN> pieces (lossless)
  double character_coverage = 0.9995;
  // identity keeps the text as written (decode(encode(x)) == x); nmt_nfkc is SentencePiece's default
  std::string normalization = "identity";     // identity | nfkc | nmt_nfkc | nfkc_cf | nmt_nfkc_cf
  bool split_digits = true;                   // each digit its own piece (as Llama's tokenizer)
  int64_t input_sentence_size = 0;            // sample at most this many lines (0: all)
  int64_t max_sentence_length = 16384;        // longer lines (bytes) are skipped by the trainer
  int64_t num_threads = 0;                    // 0: the hardware threads
  std::vector<std::string> extra;             // more trainer flags, "key=value"
};

// Trains a SentencePiece model (BOS <s> = 1, EOS </s> = 2, UNK <unk> = 0, no PAD) and writes
// tokenizer.model, tokenizer.vocab and a tokenizer_config.json (add_bos_token: true) into
// output_dir. Errors name the bad option or input.
void train_sentencepiece(const SpmTrainOptions& opts);

// The path of the shim library that will be (or was) loaded; throws listing the places looked at.
std::filesystem::path spm_shim_path();

}  // namespace lminf
