// Token sequences for tasks, whatever data.format says:
//   ids                one sequence per line of token ids (experiments/data/token_data.h)
//   text, jsonl,       documents (experiments/data/text_data.h) tokenized on the fly with the model's
//   jsonl.zst          tokenizer (data.tokenizer overrides model.path), without the tokenizer's own
//                      special tokens; data.prepend_bos then adds the model's bos_token_id
// Sequences are yielded whole; tasks cut them with truncate_tokens(seq, max_length, data.truncation).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/experiment_spec.h"
#include "framework/transformer/model_config.h"

namespace lminf {

class SequenceSource {
 public:
  virtual ~SequenceSource() = default;
  // The next sequence (BOS first when data.prepend_bos); false after the last or after
  // data.max_sequences of them.
  virtual bool next(std::vector<int64_t>& seq) = 0;
  // What was read and skipped (files, records, documents, skips by kind), for results.json.
  virtual nlohmann::json report() const = 0;
};

std::unique_ptr<SequenceSource> open_sequence_source(const DataSpec& data, const ModelConfig& model);

// Every sequence of the source, then a warning summing up skipped records (if any). Throws when
// there is none.
std::vector<std::vector<int64_t>> read_all_sequences(SequenceSource& source, const DataSpec& data);

// Problems of the data section that show without reading the data (before any weight is read):
// data.path resolves to files, a tokenizer exists for text formats and fits the model's vocabulary,
// data.filter is a map of field paths to values, keys that do not apply to the format.
std::vector<std::string> data_problems(const DataSpec& data, const ModelConfig& model);

// data.filter as (dotted path, value) pairs; throws when it is not a map of scalars.
std::vector<std::pair<std::string, std::string>> data_filter(const DataSpec& data);

}  // namespace lminf
