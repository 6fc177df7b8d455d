#include "framework/text/hf_tokenizer.h"

#include <unicase.h>
#include <uninorm.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <unordered_map>

#include "framework/text/bpe.h"
#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/text/unicode_regex.h"
#include "framework/core/utf8.h"

#include "framework/text/hf_tokenizer_steps.h"
#include "framework/transformer/model_config.h"

namespace lminf {
namespace {

using namespace hf_steps;

struct AddedToken {
  int64_t id = -1;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};


// The "model" section: a BPE vocabulary, merges and options.
std::unique_ptr<BpeModel> read_bpe_model(const json& m, const std::string& where) {
  if (!m.is_object()) fail(where, ": no \"model\" object");
  const std::string type = str_field(m, "type", where, "BPE");
  if (type != "BPE")
    fail(where, ": model type \"", type, "\" is not supported (lminf reads BPE tokenizer.json files; ",
         "for a SentencePiece Unigram model use its tokenizer.model)");
  if (m.contains("continuing_subword_prefix") && !m["continuing_subword_prefix"].is_null() &&
      !m["continuing_subword_prefix"].get<std::string>().empty())
    fail(where, ": BPE continuing_subword_prefix is not supported");
  if (m.contains("end_of_word_suffix") && !m["end_of_word_suffix"].is_null() &&
      !m["end_of_word_suffix"].get<std::string>().empty())
    fail(where, ": BPE end_of_word_suffix is not supported");
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() > 0)
    fail(where, ": BPE dropout is not supported (it makes encoding random)");
  const json& v = m.value("vocab", json());
  if (!v.is_object()) fail(where, ": model.vocab must be an object of token -> id");
  std::unordered_map<std::string, int64_t> vocab;
  vocab.reserve(v.size());
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_number_integer()) fail(where, ": model.vocab[\"", it.key(), "\"] is not an integer id");
    vocab.emplace(it.key(), it.value().get<int64_t>());
  }
  std::vector<std::pair<std::string, std::string>> merges;
  const json& mj = m.value("merges", json::array());
  merges.reserve(mj.size());
  for (size_t r = 0; r < mj.size(); ++r) {
    const json& e = mj[r];
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail(where, ": merge ", r, " \"", s, "\" must be two tokens separated by one space");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      fail(where, ": merge ", r, " must be \"a b\" or [\"a\", \"b\"]");
    }
  }
  BpeOptions bo;
  bo.byte_fallback = bool_field(m, "byte_fallback", false);
  bo.fuse_unk = bool_field(m, "fuse_unk", false);
  bo.ignore_merges = bool_field(m, "ignore_merges", false);
  const std::string unk = str_field(m, "unk_token", where);
  if (!unk.empty()) {
    auto it = vocab.find(unk);
    if (it == vocab.end()) fail(where, ": model.unk_token \"", unk, "\" is not in the vocabulary");
    bo.unk_id = it->second;
  }
  return std::make_unique<BpeModel>(std::move(vocab), merges, bo, where);
}

// The "added_tokens" list.
std::vector<AddedToken> read_added_tokens(const json& list, const std::string& where) {
  std::vector<AddedToken> out;
  for (const auto& a : list) {
    AddedToken t;
    const auto id = a.find("id");
    if (id == a.end() || !id->is_number_integer() || id->get<int64_t>() < 0 || id->get<int64_t>() >= kMaxVocab)
      fail(where, ": added_tokens: \"id\" must be an integer in 0..", kMaxVocab - 1, ", got ",
           id == a.end() ? std::string("none") : id->dump().substr(0, 40));
    t.id = id->get<int64_t>();
    t.content = str_field(a, "content", where);
    t.special = bool_field(a, "special", false);
    t.lstrip = bool_field(a, "lstrip", false);
    t.rstrip = bool_field(a, "rstrip", false);
    t.single_word = bool_field(a, "single_word", false);
    t.normalized = bool_field(a, "normalized", !t.special);
    if (t.id < 0 || t.content.empty()) fail(where, ": an added token needs an id >= 0 and a non-empty content");
    check_utf8(t.content, where + ": added token " + std::to_string(t.id));
    out.push_back(std::move(t));
  }
  return out;
}

// The post-processor's template for a single sequence: the ids encode(text, true) adds before and after.
void read_post_processor(const json& p, const std::string& where, std::vector<int64_t>& prefix,
                         std::vector<int64_t>& suffix) {
  if (p.is_null()) return;
  const std::string type = str_field(p, "type", where);
  if (type == "Sequence") {
    for (const auto& q : p.value("processors", json::array())) read_post_processor(q, where, prefix, suffix);
  } else if (type == "ByteLevel") {
    // offsets only
  } else if (type == "TemplateProcessing") {
    const json& specials = p.value("special_tokens", json::object());
    bool seen_a = false;
    prefix.clear();
    suffix.clear();
    for (const auto& item : p.value("single", json::array())) {
      if (item.contains("Sequence")) {
        seen_a = true;
      } else if (item.contains("SpecialToken")) {
        const std::string name = str_field(item["SpecialToken"], "id", where);
        if (!specials.contains(name)) fail(where, ": post_processor names special token \"", name, "\" without ids");
        for (const auto& id : specials[name].value("ids", json::array()))
          (seen_a ? suffix : prefix).push_back(id.get<int64_t>());
      }
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    prefix = {p.at("cls").at(1).get<int64_t>()};
    suffix = {p.at("sep").at(1).get<int64_t>()};
  } else {
    fail(where, ": post_processor ", type,
         " is not supported (TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
  }
}

}  // namespace

// ---- the tokenizer ----------------------------------------------------------------------------

struct HfTokenizer::Impl {
  std::string where;
  TokenizerConfig config;
  NormalizerInfo normalizer;
  PreTokenizerInfo pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  Decoder decoder;
  std::vector<AddedToken> added;             // in file order
  std::vector<std::string> id_to_token;      // model vocab and added tokens
  std::vector<char> is_special;              // per id
  std::vector<int64_t> prefix, suffix;       // added around a text by encode(text, true)
  int64_t bos = -1, eos = -1;
  int64_t n_vocab = 0;
  bool round_trips = false;
  std::unique_ptr<UnicodeRegex> word_re;     // \w, for single_word added tokens
  // added tokens by first byte, longest first, split by whether they match raw or normalized text
  std::vector<std::vector<const AddedToken*>> raw_by_byte, norm_by_byte;

  int64_t lookup(std::string_view tok) const {
    for (const auto& a : added)
      if (a.content == tok) return a.id;
    return model->token_to_id(tok);
  }

  // Splits `text` into (segment, added token id or -1) with leftmost-longest matching.
  void split_added(const std::string& text, const std::vector<std::vector<const AddedToken*>>& by_byte,
                   std::vector<std::pair<std::string, int64_t>>& out) const {
    size_t seg_start = 0, p = 0;
    while (p < text.size()) {
      const AddedToken* hit = nullptr;
      for (const AddedToken* a : by_byte[static_cast<unsigned char>(text[p])]) {
        if (text.compare(p, a->content.size(), a->content) != 0) continue;
        if (a->single_word) {
          const size_t e = p + a->content.size();
          bool ok = true;
          if (p > 0) {
            size_t k = p - 1;
            while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
            ok = !is_word_char(text, k, *word_re);
          }
          if (ok && e < text.size()) ok = !is_word_char(text, e, *word_re);
          if (!ok) continue;
        }
        hit = a;  // longest first
        break;
      }
      if (!hit) {
        p += utf8_length(static_cast<unsigned char>(text[p]));
        continue;
      }
      size_t b = p, e = p + hit->content.size();
      if (hit->lstrip)
        while (b > seg_start && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
      if (hit->rstrip)
        while (e < text.size() && std::isspace(static_cast<unsigned char>(text[e]))) ++e;
      if (b > seg_start) out.emplace_back(text.substr(seg_start, b - seg_start), -1);
      out.emplace_back(std::string(), hit->id);
      seg_start = p = e;
    }
    if (seg_start < text.size()) out.emplace_back(text.substr(seg_start), -1);
  }
};

HfTokenizer::HfTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::~HfTokenizer() = default;

std::unique_ptr<HfTokenizer> HfTokenizer::from_file(const std::filesystem::path& tokenizer_json,
                                                    const TokenizerConfig& config) {
  const json j =
      read_json_file(tokenizer_json, " (the file is damaged or truncated: download tokenizer.json again)");
  return from_json(j, config, tokenizer_json.string());
}

std::unique_ptr<HfTokenizer> HfTokenizer::from_json(const json& j, const TokenizerConfig& config,
                                                    const std::string& where) {
  if (!j.is_object()) fail(where, ": expected a JSON object (a Hugging Face tokenizer.json)");
  auto impl = std::make_unique<Impl>();
  impl->where = where;
  impl->config = config;
  try {
    impl->model = read_bpe_model(j.value("model", json()), where);
    impl->added = read_added_tokens(j.value("added_tokens", json::array()), where);
    impl->normalizer = parse_normalizer(j.value("normalizer", json()), where);
    impl->pre_tokenizer = parse_pre_tokenizer(j.value("pre_tokenizer", json()), where);
    impl->decoder = parse_decoder(j.value("decoder", json()), where);
  } catch (const json::exception& e) {
    fail(where, ": unexpected tokenizer.json structure: ", json_error_text(e));
  }
  Impl& t = *impl;
  t.word_re = std::make_unique<UnicodeRegex>(R"([^\W_])", where);

  // id -> token, specials
  int64_t max_id = -1;
  for (const auto& [tok, id] : t.model->vocab()) max_id = std::max(max_id, id);
  for (const auto& a : t.added) max_id = std::max(max_id, a.id);
  t.n_vocab = max_id + 1;
  t.id_to_token.assign(static_cast<size_t>(t.n_vocab), std::string());
  t.is_special.assign(static_cast<size_t>(t.n_vocab), 0);
  for (const auto& [tok, id] : t.model->vocab()) t.id_to_token[static_cast<size_t>(id)] = tok;
  for (const auto& a : t.added) {
    t.id_to_token[static_cast<size_t>(a.id)] = a.content;
    t.is_special[static_cast<size_t>(a.id)] = a.special ? 1 : 0;
  }
  t.raw_by_byte.assign(256, {});
  t.norm_by_byte.assign(256, {});
  for (const auto& a : t.added)
    (a.normalized && t.normalizer.fn ? t.norm_by_byte : t.raw_by_byte)[static_cast<unsigned char>(a.content[0])].push_back(&a);
  for (auto* table : {&t.raw_by_byte, &t.norm_by_byte})
    for (auto& list : *table)
      std::stable_sort(list.begin(), list.end(),
                       [](const AddedToken* x, const AddedToken* y) { return x->content.size() > y->content.size(); });

  // BOS / EOS and what encode(text, true) adds
  auto id_of = [&](const std::optional<std::string>& tok, const char* key) -> int64_t {
    if (!tok) return -1;
    const int64_t id = t.lookup(*tok);
    if (id < 0)
      fail(t.config.source.string(), ": ", key, " \"", *tok, "\" is not a token of ", where);
    return id;
  };
  t.bos = id_of(config.bos_token, "bos_token");
  t.eos = id_of(config.eos_token, "eos_token");
  if (config.add_bos_token || config.add_eos_token) {
    if (config.add_bos_token.value_or(false)) {
      if (t.bos < 0) fail(t.config.source.string(), ": add_bos_token is true but there is no bos_token");
      t.prefix = {t.bos};
    }
    if (config.add_eos_token.value_or(false)) {
      if (t.eos < 0) fail(t.config.source.string(), ": add_eos_token is true but there is no eos_token");
      t.suffix = {t.eos};
    }
  } else {
    try {
      read_post_processor(j.value("post_processor", json()), where, t.prefix, t.suffix);
    } catch (const json::exception& e) {
      fail(where, ": unexpected post_processor structure: ", json_error_text(e));
    }
  }
  for (int64_t id : t.prefix)
    if (id < 0 || id >= t.n_vocab) fail(where, ": post_processor adds id ", id, " outside the vocabulary");
  for (int64_t id : t.suffix)
    if (id < 0 || id >= t.n_vocab) fail(where, ": post_processor adds id ", id, " outside the vocabulary");
  auto tok = std::unique_ptr<HfTokenizer>(new HfTokenizer(std::move(impl)));
  // Whether decode(encode(x)) == x: the structure must allow it (a decoder, no lossy normalizer,
  // no unknown tokens), and a probe with the usual casualties -- leading and repeated spaces,
  // tabs and newlines, decomposed accents, characters outside any small vocabulary -- must survive
  // (a Metaspace pre-tokenizer with a Strip decoder, e.g., loses a leading space).
  Impl& ti = *tok->impl_;
  const bool no_unknowns = ti.pre_tokenizer.byte_level || ti.model->options().byte_fallback;
  if (ti.decoder && !ti.normalizer.lossy && no_unknowns) {
    ti.round_trips = true;
    for (const std::string probe : {" lead", "  two  spaces ", "a\tb\n\n c", "e\xCC\x81 \xC3\xA9", "\xF0\x9F\xA4\x97x", "x"})
      ti.round_trips = ti.round_trips && tok->decode(tok->encode(probe, false)) == probe;
  }
  return tok;
}

std::vector<int64_t> HfTokenizer::encode(std::string_view text, bool add_special) const {
  const Impl& t = *impl_;
  check_utf8(text, "tokenizer input");
  std::vector<int64_t> ids;
  if (add_special) ids = t.prefix;
  std::vector<std::pair<std::string, int64_t>> raw;
  t.split_added(std::string(text), t.raw_by_byte, raw);
  bool at_start = true;
  for (auto& [segment, added_id] : raw) {
    if (added_id >= 0) {
      ids.push_back(added_id);
      at_start = false;
      continue;
    }
    const std::string normalized = t.normalizer.fn ? t.normalizer.fn(segment) : segment;
    std::vector<std::pair<std::string, int64_t>> parts;
    t.split_added(normalized, t.norm_by_byte, parts);
    for (auto& [part, id] : parts) {
      if (id >= 0) {
        ids.push_back(id);
        at_start = false;
        continue;
      }
      std::vector<Piece> pieces{Piece{std::move(part), at_start}};
      if (t.pre_tokenizer.fn) t.pre_tokenizer.fn(pieces);
      for (const auto& p : pieces) t.model->tokenize(p.text, ids);
      at_start = false;
    }
    at_start = false;
  }
  if (add_special) ids.insert(ids.end(), t.suffix.begin(), t.suffix.end());
  return ids;
}

std::string HfTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= t.n_vocab || (t.id_to_token[static_cast<size_t>(id)].empty()))
      fail("decode: token id ", id, " is not in the vocabulary of ", t.where, " (", t.n_vocab, " ids)");
    if (skip_special && t.is_special[static_cast<size_t>(id)]) continue;
    tokens.push_back(t.id_to_token[static_cast<size_t>(id)]);
  }
  if (!t.decoder) {
    std::string s;
    for (size_t i = 0; i < tokens.size(); ++i) s += (i ? " " : "") + tokens[i];
    return s;
  }
  t.decoder(tokens);
  std::string s;
  for (const auto& x : tokens) s += x;
  return utf8_lossy(s);
}

int64_t HfTokenizer::vocab_size() const { return impl_->n_vocab; }
int64_t HfTokenizer::bos_id() const { return impl_->bos; }
int64_t HfTokenizer::eos_id() const { return impl_->eos; }

std::string HfTokenizer::id_to_piece(int64_t id) const {
  if (id < 0 || id >= impl_->n_vocab) return "";
  return impl_->id_to_token[static_cast<size_t>(id)];
}

int64_t HfTokenizer::token_to_id(std::string_view token) const { return impl_->lookup(token); }

bool HfTokenizer::round_trips() const { return impl_->round_trips; }

std::string HfTokenizer::description() const {
  const Impl& t = *impl_;
  std::string kind = t.pre_tokenizer.byte_level ? "byte-level BPE"
                     : t.model->options().byte_fallback ? "BPE with byte fallback"
                                                        : "BPE";
  return t.where + " (" + kind + ", " + std::to_string(t.n_vocab) + " ids, " + std::to_string(t.model->n_merges()) +
         " merges)";
}

const std::vector<std::string>& byte_level_alphabet() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      std::string s;
      utf8_append(s, static_cast<char32_t>(printable ? b : next++));
      t[static_cast<size_t>(b)] = s;
    }
    return t;
  }();
  return table;
}

}  // namespace lminf
