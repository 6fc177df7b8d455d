#include "experiments/data/token_stream.h"

#include <algorithm>
#include <limits>

#include "experiments/data/sequence_source.h"
#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "experiments/data/text_data.h"
#include "experiments/data/token_data.h"
#include "framework/text/tokenizer.h"

namespace lminf {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

StreamCursor StreamCursor::from_vector(const std::vector<int64_t>& v) {
  if (v.size() != 4) fail("stream cursor: expected 4 entries (position, epoch, document, offset), got ", v.size());
  return StreamCursor{v[0], v[1], v[2], v[3]};
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  uint64_t state = seed ^ (static_cast<uint64_t>(epoch) * 0xD1B54A32D192ED03ull);
  splitmix64(state);
  for (int64_t i = n - 1; i > 0; --i) {
    const uint64_t range = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % range;
    uint64_t r = splitmix64(state);
    while (r >= limit) r = splitmix64(state);  // no modulo bias
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(r % range)]);
  }
  return p;
}

// The documents: their text (tokenized on demand) or, for data.format ids, their ids.
class TokenStream::Documents {
 public:
  Documents(const DataSpec& data, const ModelConfig& model) {
    if (data.format == "ids") {
      IdFileOptions io;
      io.vocab_size = model.vocab_size;
      io.max_sequences = data.max_sequences;
      ids_ = read_id_file(data.path, io);
      report_ = {{"format", "ids"}, {"documents", ids_.size()}};
      return;
    }
    TextDataOptions o;
    o.format = data.format;
    o.path = data.path;
    o.text_field = data.text_field;
    o.filter = data_filter(data);
    DocumentReader reader(o);
    std::string doc;
    while ((data.max_sequences == 0 || static_cast<int64_t>(texts_.size()) < data.max_sequences) && reader.next(doc))
      texts_.push_back(std::move(doc));
    report_ = reader.report();
    const std::string tp = data.tokenizer.empty()
                               ? (model.source.empty() ? std::string() : model.source.parent_path().string())
                               : data.tokenizer;
    tokenizer_ = load_tokenizer(tp);
    check_tokenizer_fits(*tokenizer_, model, data.tokenizer.empty() ? "model.path" : "data.tokenizer");
    report_["tokenizer"] = tokenizer_->description();
    report_["documents"] = texts_.size();
    int64_t chars = 0;
    for (const auto& t : texts_) chars += static_cast<int64_t>(t.size());
    report_["text_bytes"] = chars;
    if (reader.skipped() > 0)
      log_warn("data: skipped ", reader.skipped(), " records of ", data.path, " (see results.json: data.skipped)");
  }
  int64_t size() const { return static_cast<int64_t>(texts_.empty() ? ids_.size() : texts_.size()); }
  std::vector<int64_t> tokens(int64_t i) const {
    if (!texts_.empty()) return tokenizer_->encode(texts_[static_cast<size_t>(i)], false);
    return ids_[static_cast<size_t>(i)];
  }
  const nlohmann::json& report() const { return report_; }

 private:
  std::vector<std::string> texts_;
  std::vector<std::vector<int64_t>> ids_;
  std::unique_ptr<Tokenizer> tokenizer_;
  nlohmann::json report_;
};

TokenStream::TokenStream(const DataSpec& data, const ModelConfig& model, const TokenStreamOptions& opts)
    : docs_(std::make_unique<Documents>(data, model)), opts_(opts) {
  if (docs_->size() == 0) fail("data.path: ", data.path, " yields no documents");
  if (data.prepend_bos) {
    if (model.bos_token_id < 0)
      fail("data.prepend_bos is true but the model's config.json has no bos_token_id (set data.prepend_bos: false)");
    bos_ = model.bos_token_id;
  }
  if (opts_.eos_separator) {
    if (model.eos_token_ids.empty())
      fail("task.separator: eos, but the model's config.json has no eos_token_id (use separator: none)");
    eos_ = model.eos_token_ids.front();
  }
}

TokenStream::~TokenStream() = default;

int64_t TokenStream::n_documents() const { return docs_->size(); }

std::vector<int64_t> TokenStream::order(int64_t epoch) const {
  const int64_t n = docs_->size();
  if (opts_.shuffle) return seeded_permutation(n, opts_.seed, epoch);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  return p;
}

void TokenStream::load_document() {
  if (order_epoch_ != cursor_.epoch) {
    order_ = order(cursor_.epoch);
    order_epoch_ = cursor_.epoch;
  }
  doc_tokens_ = docs_->tokens(order_[static_cast<size_t>(cursor_.document)]);
  if (!doc_tokens_.empty() && eos_ >= 0) doc_tokens_.push_back(eos_);
  doc_loaded_ = true;
}

int64_t TokenStream::read(int64_t n, std::vector<int64_t>& out) {
  int64_t got = 0;
  int64_t empty_in_a_row = 0;  // documents passed without a token: a whole pass of them is an error
  const int64_t n_docs = docs_->size();
  while (got < n) {
    if (cursor_.position == 0 && bos_ >= 0) {
      out.push_back(bos_);
      ++cursor_.position;
      ++got;
      continue;
    }
    if (cursor_.document >= n_docs) {
      if (!opts_.repeat) break;
      ++cursor_.epoch;
      cursor_.document = 0;
      cursor_.offset = 0;
      doc_loaded_ = false;
      continue;
    }
    if (!doc_loaded_) load_document();
    const int64_t size = static_cast<int64_t>(doc_tokens_.size());
    if (cursor_.offset >= size) {
      if (size == 0 && ++empty_in_a_row > n_docs)
        fail("data: none of the ", n_docs, " documents has any token (the stream would be empty)");
      ++cursor_.document;
      cursor_.offset = 0;
      doc_loaded_ = false;
      continue;
    }
    const int64_t take = std::min(n - got, size - cursor_.offset);
    out.insert(out.end(), doc_tokens_.begin() + cursor_.offset, doc_tokens_.begin() + cursor_.offset + take);
    cursor_.offset += take;
    cursor_.position += take;
    got += take;
    empty_in_a_row = 0;
  }
  return got;
}

void TokenStream::seek(const StreamCursor& c) {
  if (c.position < 0 || c.epoch < 0 || c.document < 0 || c.offset < 0 || c.document > docs_->size() ||
      (c.epoch > 0 && !opts_.repeat))
    fail("stream cursor (position ", c.position, ", pass ", c.epoch, ", document ", c.document, ", offset ", c.offset,
         ") does not fit this data (", docs_->size(), " documents", opts_.repeat ? "" : ", repeat off", ")");
  cursor_ = c;
  doc_loaded_ = false;
  if (c.document < docs_->size()) {
    load_document();
    if (c.offset > static_cast<int64_t>(doc_tokens_.size()))
      fail("stream cursor: offset ", c.offset, " is past the end of document ", c.document, " of pass ", c.epoch,
           " (", doc_tokens_.size(), " tokens): the data changed since the cursor was saved");
  }
}

nlohmann::json TokenStream::report() const {
  nlohmann::json r = docs_->report();
  r["passes_started"] = cursor_.epoch + 1;
  r["stream_position"] = cursor_.position;
  return r;
}

}  // namespace lminf
