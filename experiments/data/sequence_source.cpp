#include "experiments/data/sequence_source.h"

#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "experiments/data/text_data.h"
#include "experiments/data/token_data.h"
#include "framework/text/tokenizer.h"

namespace lminf {
namespace {

bool is_text_format(const std::string& f) { return f == "text" || f == "jsonl" || f == "jsonl.zst"; }

std::string tokenizer_path(const DataSpec& data, const std::string& model_path) {
  return data.tokenizer.empty() ? model_path : data.tokenizer;
}

class IdSequenceSource final : public SequenceSource {
 public:
  IdSequenceSource(const DataSpec& data, const ModelConfig& model) {
    IdFileOptions io;
    io.vocab_size = model.vocab_size;
    io.bos_id = model.bos_token_id;
    io.prepend_bos = data.prepend_bos;
    io.max_sequences = data.max_sequences;
    seqs_ = read_id_file(data.path, io);
  }
  bool next(std::vector<int64_t>& seq) override {
    if (next_ >= seqs_.size()) return false;
    seq = std::move(seqs_[next_++]);
    return true;
  }
  nlohmann::json report() const override { return {{"format", "ids"}, {"sequences", seqs_.size()}}; }

 private:
  std::vector<std::vector<int64_t>> seqs_;
  size_t next_ = 0;
};

class TextSequenceSource final : public SequenceSource {
 public:
  TextSequenceSource(const DataSpec& data, const ModelConfig& model, const std::string& model_path)
      : data_(data), reader_(options(data)) {
    const std::string tp = tokenizer_path(data, model_path);
    tokenizer_ = load_tokenizer(tp);
    check_tokenizer_fits(*tokenizer_, model, data.tokenizer.empty() ? "model.path" : "data.tokenizer");
    bos_ = model.bos_token_id;
    if (data.prepend_bos && bos_ < 0)
      fail("data.prepend_bos is true but the model's config.json has no bos_token_id (set data.prepend_bos: false)");
    log_info("data: ", data.format, " from ", data.path, ", tokenizer ", tokenizer_->description());
  }
  bool next(std::vector<int64_t>& seq) override {
    if (data_.max_sequences > 0 && yielded_ >= data_.max_sequences) return false;
    std::string doc;
    while (reader_.next(doc)) {
      seq.clear();
      if (data_.prepend_bos) seq.push_back(bos_);
      const std::vector<int64_t> ids = tokenizer_->encode(doc, false);
      if (ids.empty()) {
        ++empty_;
        continue;
      }
      seq.insert(seq.end(), ids.begin(), ids.end());
      ++yielded_;
      return true;
    }
    return false;
  }
  nlohmann::json report() const override {
    nlohmann::json r = reader_.report();
    r["sequences"] = yielded_;
    r["empty_documents"] = empty_;
    r["tokenizer"] = tokenizer_->description();
    return r;
  }
  const DocumentReader& reader() const { return reader_; }

 private:
  static TextDataOptions options(const DataSpec& data) {
    TextDataOptions o;
    o.format = data.format;
    o.path = data.path;
    o.text_field = data.text_field;
    o.filter = data_filter(data);
    return o;
  }
  DataSpec data_;
  DocumentReader reader_;
  std::unique_ptr<Tokenizer> tokenizer_;
  int64_t bos_ = -1, yielded_ = 0, empty_ = 0;
};

}  // namespace

std::vector<std::pair<std::string, std::string>> data_filter(const DataSpec& data) {
  std::vector<std::pair<std::string, std::string>> f;
  const YAML::Node& n = data.filter;
  if (!n || n.IsNull()) return f;
  if (!n.IsMap())
    fail("data.filter must be a map of field paths to values, e.g. {meta.pile_set_name: ArXiv}");
  for (const auto& kv : n) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar())
      fail("data.filter: every entry must be `field.path: value` with a plain value (got a list or map under ",
           kv.first.IsScalar() ? kv.first.Scalar() : std::string("?"), ")");
    f.emplace_back(kv.first.Scalar(), kv.second.Scalar());
  }
  return f;
}

std::unique_ptr<SequenceSource> open_sequence_source(const DataSpec& data, const ModelConfig& model) {
  if (data.format == "ids") return std::make_unique<IdSequenceSource>(data, model);
  if (is_text_format(data.format))
    return std::make_unique<TextSequenceSource>(data, model, model.source.empty() ? "" : model.source.parent_path().string());
  fail("data.format: \"", data.format, "\" is not one of ids, text, jsonl, jsonl.zst");
}

std::vector<std::vector<int64_t>> read_all_sequences(SequenceSource& source, const DataSpec& data) {
  std::vector<std::vector<int64_t>> seqs;
  std::vector<int64_t> s;
  while (source.next(s)) seqs.push_back(std::move(s));
  const nlohmann::json r = source.report();
  if (r.value("skipped_total", int64_t{0}) > 0) {
    std::string parts;
    for (const auto& [kind, count] : r["skipped"].items())
      parts += (parts.empty() ? "" : ", ") + std::to_string(count.get<int64_t>()) + " " + kind;
    std::string first;
    for (const auto& x : r["first_skipped"]) first += "\n  " + x.get<std::string>();
    log_warn("data: skipped ", r["skipped_total"].get<int64_t>(), " of ", r["records"].get<int64_t>(), " records (",
             parts, "); the first:", first);
  }
  if (seqs.empty()) {
    std::string why;
    if (r.contains("records"))
      why = " (" + std::to_string(r["records"].get<int64_t>()) + " records, " +
            std::to_string(r.value("filtered_out", int64_t{0})) + " filtered out by data.filter, " +
            std::to_string(r.value("skipped_total", int64_t{0})) + " skipped)";
    fail("data.path: ", data.path, " yields no sequences", why);
  }
  return seqs;
}

std::vector<std::string> data_problems(const DataSpec& data, const ModelConfig& model) {
  std::vector<std::string> p;
  const bool text = is_text_format(data.format);
  if (data.format != "jsonl" && data.format != "jsonl.zst" && data.text_field != "text")
    p.push_back("data.text_field applies to the jsonl formats only (data.format is " + data.format + ")");
  if (!text) {
    if (!std::filesystem::exists(data.path)) p.push_back("data.path: " + data.path + " does not exist");
    if (data.filter && !data.filter.IsNull()) p.push_back("data.filter applies to the jsonl formats only (data.format is " + data.format + ")");
    if (!data.tokenizer.empty()) p.push_back("data.tokenizer applies to the text formats only (data.format is " + data.format + ")");
    return p;
  }
  if (data.format == "text" && data.filter && !data.filter.IsNull())
    p.push_back("data.filter applies to the jsonl formats only (data.format is text)");
  try {
    expand_data_path(data.path, data.format, "data");
  } catch (const Error& e) {
    p.push_back(e.what());
  }
  try {
    data_filter(data);
  } catch (const Error& e) {
    p.push_back(e.what());
  }
  if (data.text_field.empty()) p.push_back("data.text_field is empty (the default is text)");
  try {
    const std::string tp = tokenizer_path(data, model.source.empty() ? "" : model.source.parent_path().string());
    auto tok = load_tokenizer(tp);
    check_tokenizer_fits(*tok, model, data.tokenizer.empty() ? "model.path" : "data.tokenizer");
  } catch (const Error& e) {
    p.push_back(std::string(data.tokenizer.empty() ? "model.path: " : "data.tokenizer: ") + e.what());
  }
  return p;
}

}  // namespace lminf
