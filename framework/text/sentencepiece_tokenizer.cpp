#include "framework/text/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "framework/io/atomic_file.h"
#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "framework/text/spm_shim/spm_shim.h"
#include "framework/core/utf8.h"

#ifndef LMINF_SPM_SHIM_BUILD_PATH
#define LMINF_SPM_SHIM_BUILD_PATH ""
#endif

namespace lminf {
namespace fs = std::filesystem;

namespace {

constexpr const char* kShimName = "liblminf_spm_shim.so";
constexpr size_t kErrCap = 1024;

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

std::vector<fs::path> shim_candidates() {
  std::vector<fs::path> c;
  const fs::path exe_dir = executable_dir();
  if (!exe_dir.empty()) {
    c.push_back(exe_dir / kShimName);                      // build tree: next to build/lminf
    c.push_back(exe_dir / ".." / "lib" / "lminf" / kShimName);  // installed: PREFIX/bin/lminf, PREFIX/lib/lminf/
  }
  if (std::string(LMINF_SPM_SHIM_BUILD_PATH).size() > 0) c.push_back(LMINF_SPM_SHIM_BUILD_PATH);  // tests, moved binaries
  return c;
}

}  // namespace

// The shim opened in its own link namespace, with its C entry points. One per process (a link
// namespace cannot be unloaded safely and glibc allows only 16 of them); immutable once loaded.
class SpmLibrary {
 public:
  static const SpmLibrary& get() {
    static const SpmLibrary lib;  // thread-safe one-time initialisation
    return lib;
  }

  fs::path path;
  decltype(&lminf_spm_load) load = nullptr;
  decltype(&lminf_spm_free) free = nullptr;
  decltype(&lminf_spm_encode) encode = nullptr;
  decltype(&lminf_spm_decode) decode = nullptr;
  decltype(&lminf_spm_piece_size) piece_size = nullptr;
  decltype(&lminf_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&lminf_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&lminf_spm_bos_id) bos_id = nullptr;
  decltype(&lminf_spm_eos_id) eos_id = nullptr;
  decltype(&lminf_spm_unk_id) unk_id = nullptr;
  decltype(&lminf_spm_is_control) is_control = nullptr;
  decltype(&lminf_spm_is_unknown) is_unknown = nullptr;
  decltype(&lminf_spm_is_byte) is_byte = nullptr;
  decltype(&lminf_spm_train) train = nullptr;

 private:
  SpmLibrary() {
    path = spm_shim_path();
    // LM_ID_NEWLM: a fresh link namespace, so the shim's libsentencepiece (with its private protobuf)
    // and its own libstdc++ never meet libtorch's protobuf.
    void* h = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      fail("cannot load the SentencePiece shim ", path.string(), ": ", e ? e : "unknown error",
           " (install libsentencepiece0: scripts/setup.sh)");
    }
    auto sym = [&](auto& fn, const char* name) {
      void* p = dlsym(h, name);
      if (!p) fail(path.string(), ": symbol ", name, " is missing (rebuild lminf: the shim is from another version)");
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
    };
    decltype(&lminf_spm_abi_version) abi = nullptr;
    sym(abi, "lminf_spm_abi_version");
    if (abi() != LMINF_SPM_SHIM_ABI)
      fail(path.string(), ": shim ABI version ", abi(), ", this lminf expects ", LMINF_SPM_SHIM_ABI,
           " (rebuild and reinstall lminf)");
    sym(load, "lminf_spm_load");
    sym(free, "lminf_spm_free");
    sym(encode, "lminf_spm_encode");
    sym(decode, "lminf_spm_decode");
    sym(piece_size, "lminf_spm_piece_size");
    sym(id_to_piece, "lminf_spm_id_to_piece");
    sym(piece_to_id, "lminf_spm_piece_to_id");
    sym(bos_id, "lminf_spm_bos_id");
    sym(eos_id, "lminf_spm_eos_id");
    sym(unk_id, "lminf_spm_unk_id");
    sym(is_control, "lminf_spm_is_control");
    sym(is_unknown, "lminf_spm_is_unknown");
    sym(is_byte, "lminf_spm_is_byte");
    sym(train, "lminf_spm_train");
    // The handle stays open for the life of the process.
    log_debug("SentencePiece shim ", path.string(), " loaded in its own link namespace");
  }
};

fs::path spm_shim_path() {
  std::string tried;
  for (const auto& c : shim_candidates()) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return fs::weakly_canonical(c, ec);
    tried += "\n  " + c.string();
  }
  fail("the SentencePiece shim ", kShimName, " was not found; looked at:", tried,
       "\n(build the lminf_spm_shim target, or install it with lminf: cmake --install)");
}

SentencePieceTokenizer::SentencePieceTokenizer(const fs::path& model_file, const TokenizerConfig& config)
    : lib_(SpmLibrary::get()), where_(model_file.string()) {
  char err[kErrCap] = {0};
  model_ = lib_.load(model_file.c_str(), err, sizeof err);
  if (!model_)
    fail(model_file.string(), ": not a SentencePiece model (", err,
         "); a damaged download, or a tokenizer.json saved under the wrong name");
  n_pieces_ = lib_.piece_size(model_);
  unk_ = lib_.unk_id(model_);
  control_.assign(static_cast<size_t>(n_pieces_), 0);
  for (int64_t id = 0; id < n_pieces_; ++id) {
    const auto i = static_cast<int32_t>(id);
    if (lib_.is_control(model_, i) || lib_.is_unknown(model_, i)) {
      control_[static_cast<size_t>(id)] = 1;
      const std::string piece = id_to_piece(id);
      if (!piece.empty()) specials_.emplace_back(piece, id);
    }
    if (lib_.is_byte(model_, i)) byte_fallback_ = true;
  }
  std::stable_sort(specials_.begin(), specials_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  auto id_of = [&](const std::optional<std::string>& tok, int64_t fallback, const char* key) -> int64_t {
    if (!tok) return fallback;
    const int32_t id = lib_.piece_to_id(model_, tok->data(), tok->size());
    if (id < 0 || (id == unk_ && *tok != id_to_piece(unk_)))
      fail(config.source.string(), ": ", key, " \"", *tok, "\" is not a piece of ", where_);
    return id;
  };
  bos_ = id_of(config.bos_token, lib_.bos_id(model_), "bos_token");
  eos_ = id_of(config.eos_token, lib_.eos_id(model_), "eos_token");
  add_bos_ = config.add_bos_token.value_or(bos_ >= 0);
  add_eos_ = config.add_eos_token.value_or(false);
  if (add_bos_ && bos_ < 0) fail(where_, ": add_bos_token is true but the model has no BOS piece");
  if (add_eos_ && eos_ < 0) fail(where_, ": add_eos_token is true but the model has no EOS piece");
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (model_) lib_.free(model_);
}

std::vector<int64_t> SentencePieceTokenizer::encode_plain(std::string_view text) const {
  std::vector<int32_t> buf(text.size() + 8);
  char err[kErrCap] = {0};
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t n = lib_.encode(model_, text.data(), text.size(), buf.data(), static_cast<int64_t>(buf.size()), err,
                                  sizeof err);
    if (n < 0) fail(where_, ": SentencePiece encoding failed: ", err);
    if (n <= static_cast<int64_t>(buf.size())) return std::vector<int64_t>(buf.begin(), buf.begin() + n);
    buf.resize(static_cast<size_t>(n));
  }
  fail(where_, ": SentencePiece encoding returned an inconsistent length");
}

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special) const {
  check_utf8(text, "tokenizer input");
  std::vector<int64_t> ids;
  if (add_special && add_bos_) ids.push_back(bos_);
  size_t seg = 0, p = 0;
  auto flush = [&](size_t end) {
    if (end > seg) {
      auto part = encode_plain(text.substr(seg, end - seg));
      ids.insert(ids.end(), part.begin(), part.end());
    }
  };
  while (p < text.size()) {
    const std::pair<std::string, int64_t>* hit = nullptr;
    for (const auto& s : specials_)
      if (text.compare(p, s.first.size(), s.first) == 0) {
        hit = &s;
        break;
      }
    if (!hit) {
      p += utf8_length(static_cast<unsigned char>(text[p]));
      continue;
    }
    flush(p);
    ids.push_back(hit->second);
    p += hit->first.size();
    seg = p;
  }
  flush(text.size());
  if (add_special && add_eos_) ids.push_back(eos_);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  std::vector<int32_t> run;
  char err[kErrCap] = {0};
  auto flush = [&] {
    if (run.empty()) return;
    std::string buf(run.size() * 16 + 64, '\0');
    for (int attempt = 0; attempt < 2; ++attempt) {
      const int64_t n = lib_.decode(model_, run.data(), static_cast<int64_t>(run.size()), buf.data(),
                                    static_cast<int64_t>(buf.size()), err, sizeof err);
      if (n < 0) fail(where_, ": SentencePiece decoding failed: ", err);
      if (n <= static_cast<int64_t>(buf.size())) {
        out.append(buf.data(), static_cast<size_t>(n));
        break;
      }
      buf.resize(static_cast<size_t>(n));
    }
    run.clear();
  };
  for (int64_t id : ids) {
    if (id < 0 || id >= n_pieces_)
      fail("decode: token id ", id, " is not in the vocabulary of ", where_, " (", n_pieces_, " ids)");
    if (control_[static_cast<size_t>(id)] && id != unk_) {
      flush();
      if (!skip_special) out += id_to_piece(id);
    } else {
      run.push_back(static_cast<int32_t>(id));
    }
  }
  flush();
  return utf8_lossy(out);
}

std::string SentencePieceTokenizer::id_to_piece(int64_t id) const {
  if (id < 0 || id >= n_pieces_) return "";
  std::string buf(64, '\0');
  int64_t n = lib_.id_to_piece(model_, static_cast<int32_t>(id), buf.data(), static_cast<int64_t>(buf.size()));
  if (n > static_cast<int64_t>(buf.size())) {
    buf.resize(static_cast<size_t>(n));
    n = lib_.id_to_piece(model_, static_cast<int32_t>(id), buf.data(), static_cast<int64_t>(buf.size()));
  }
  return n < 0 ? "" : buf.substr(0, static_cast<size_t>(n));
}

bool SentencePieceTokenizer::round_trips() const {
  // Normalization rules are not visible through the C interface: probe with text that the usual
  // rules (NFKC, whitespace collapsing, unknown characters) would change.
  if (!byte_fallback_) return false;
  const std::string probe = "  A\xEF\xBC\xA1  b\t\n\xE2\x84\x8C x\xF0\x9F\x98\x80  ";
  return decode(encode(probe, false)) == probe;
}

std::string SentencePieceTokenizer::description() const {
  return where_ + " (SentencePiece, " + std::to_string(n_pieces_) + " pieces" +
         (byte_fallback_ ? ", byte fallback" : "") + ")";
}

void train_sentencepiece(const SpmTrainOptions& o) {
  if (o.inputs.empty()) fail("train-tokenizer: no input files");
  std::string input;
  for (const auto& f : o.inputs) {
    if (!fs::is_regular_file(f)) fail("train-tokenizer: input ", f.string(), " is not a file");
    if (f.string().find(',') != std::string::npos)
      fail("train-tokenizer: input path ", f.string(), " holds a comma, which SentencePiece reads as a list separator (rename it)");
    input += (input.empty() ? "" : ",") + fs::absolute(f).string();
  }
  if (o.model_type != "bpe" && o.model_type != "unigram")
    fail("train-tokenizer: --model-type \"", o.model_type, "\" (use bpe or unigram)");
  if (o.vocab_size < 8) fail("train-tokenizer: --vocab-size must be at least 8");
  if (!(o.character_coverage > 0 && o.character_coverage <= 1))
    fail("train-tokenizer: --character-coverage must be in (0, 1]");
  const std::vector<std::string> norms = {"identity", "nfkc", "nmt_nfkc", "nfkc_cf", "nmt_nfkc_cf"};
  if (std::find(norms.begin(), norms.end(), o.normalization) == norms.end())
    fail("train-tokenizer: --normalization \"", o.normalization, "\" (use identity, nfkc, nmt_nfkc, nfkc_cf or nmt_nfkc_cf)");
  ensure_writable_dir(o.output_dir, "train-tokenizer output folder");
  const fs::path prefix = o.output_dir / ".tokenizer.partial";

  std::map<std::string, std::string> kw = {
      {"input", input},
      {"model_prefix", prefix.string()},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", o.model_type},
      {"byte_fallback", o.byte_fallback ? "true" : "false"},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"normalization_rule_name", o.normalization},
      // lossless by default: keep runs of spaces, newlines come back through byte fallback
      {"remove_extra_whitespaces", o.normalization == "identity" ? "false" : "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", o.split_digits ? "true" : "false"},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"minloglevel", "1"},
  };
  if (o.input_sentence_size > 0) {
    kw["input_sentence_size"] = std::to_string(o.input_sentence_size);
    kw["shuffle_input_sentence"] = "true";
  }
  if (o.num_threads > 0) kw["num_threads"] = std::to_string(o.num_threads);
  for (const auto& e : o.extra) {
    const size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0) fail("train-tokenizer: --spm \"", e, "\" must be key=value");
    kw[e.substr(0, eq)] = e.substr(eq + 1);
  }
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : kw) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  const SpmLibrary& lib = SpmLibrary::get();
  char err[kErrCap] = {0};
  if (lib.train(keys.data(), values.data(), keys.size(), err, sizeof err) != 0)
    fail("train-tokenizer: SentencePiece training failed: ", err);
  fs::rename(prefix.string() + ".model", o.output_dir / "tokenizer.model");
  fs::rename(prefix.string() + ".vocab", o.output_dir / "tokenizer.vocab");

  nlohmann::json cfg = {{"tokenizer_class", "LlamaTokenizer"},
                        {"bos_token", "<s>"},
                        {"eos_token", "</s>"},
                        {"unk_token", "<unk>"},
                        {"pad_token", nullptr},
                        {"add_bos_token", true},
                        {"add_eos_token", false},
                        {"legacy", true},
                        {"clean_up_tokenization_spaces", false},
                        {"sp_model_kwargs", nlohmann::json::object()}};
  write_file_atomic(o.output_dir / "tokenizer_config.json", cfg.dump(2) + "\n");
}

}  // namespace lminf
