// One endless-or-finite token stream built from the data: section, laid out as LM-Infinite's
// streaming evaluation does (spec section 4.2, StreamingLoader):
//   - the documents are read once (text formats keep each document's text, ids keeps its ids);
//   - each pass ("epoch") visits them in an order shuffled with (seed, epoch) -- or in file order
//     with shuffle off -- and, with repeat on, the stream starts the next pass when one ends;
//   - a single BOS (data.prepend_bos) opens the whole stream; every document adds its tokens (text
//     formats: the tokenizer without its own special tokens), then an EOS when separator is eos;
//     a document without tokens adds nothing.
// Tokens are produced lazily (one document tokenized at a time), so memory is the documents' text,
// not the stream. A StreamCursor says exactly where the stream is; seek() to a saved cursor goes on
// with the same tokens (the resume point of task streaming_perplexity).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/experiment_spec.h"
#include "framework/transformer/model_config.h"

namespace lminf {

struct TokenStreamOptions {
  bool shuffle = true;   // shuffle the documents of each pass with (seed, pass)
  bool repeat = false;   // start another pass after the last document (endless stream)
  uint64_t seed = 0;
  bool eos_separator = false;  // an EOS after every document
};

// Where the stream stands: `position` is the index of the next token in the stream (0: the BOS, if
// any); the next document token is token `offset` of document `order[document]` of pass `epoch`.
struct StreamCursor {
  int64_t position = 0;
  int64_t epoch = 0;
  int64_t document = 0;
  int64_t offset = 0;
  std::vector<int64_t> to_vector() const { return {position, epoch, document, offset}; }
  static StreamCursor from_vector(const std::vector<int64_t>& v);  // throws unless 4 entries
  bool operator==(const StreamCursor& o) const {
    return position == o.position && epoch == o.epoch && document == o.document && offset == o.offset;
  }
};

class TokenStream {
 public:
  // Reads every document of `data` (data.max_sequences caps their number); throws naming data.path
  // when there is none. Text formats load the tokenizer (data.tokenizer, else the model folder).
  TokenStream(const DataSpec& data, const ModelConfig& model, const TokenStreamOptions& opts);
  ~TokenStream();

  // Appends up to n next tokens to `out`; returns how many (fewer only where a stream without
  // repeat ends). Throws when a whole pass yields no token.
  int64_t read(int64_t n, std::vector<int64_t>& out);
  const StreamCursor& cursor() const { return cursor_; }
  // Continues from a cursor this stream (same data and options) reported earlier.
  void seek(const StreamCursor& c);

  int64_t n_documents() const;
  // The document order of pass `epoch` (indices into the documents as read).
  std::vector<int64_t> order(int64_t epoch) const;
  nlohmann::json report() const;  // what was read (files, documents, skips), the tokenizer

 private:
  class Documents;
  void load_document();  // doc_tokens_ = tokens of the cursor's document (+ EOS)

  std::unique_ptr<Documents> docs_;
  TokenStreamOptions opts_;
  int64_t bos_ = -1;  // -1: no BOS
  int64_t eos_ = -1;
  StreamCursor cursor_;
  std::vector<int64_t> order_;       // of cursor_.epoch
  int64_t order_epoch_ = -1;
  std::vector<int64_t> doc_tokens_;  // of cursor_.document (valid when doc_loaded_)
  bool doc_loaded_ = false;
};

// A permutation of 0..n-1 from (seed, epoch): Fisher-Yates over a 64-bit mixer, the same on every
// platform and standard library (std::shuffle is not).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace lminf
