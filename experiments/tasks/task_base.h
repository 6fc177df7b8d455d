// What the tasks share, so that a task's run() reads like a training script -- open the data, loop
// (score / generate / record), write the summary:
//   SpecTask<Spec>     a task whose keys are one visit() struct (TaskSection adds task.type):
//                      configure, resolved, name
//   DataParallelShare  which data-parallel replica takes which item, and the merge back to file order
//   RecordLoop         the resumable loop of the record tasks (generation, qa, passkey): share,
//                      journal (experiments/outputs/record_journal.h), progress, merge, results.json
//   right_padded_batch, print_nll_table: the batches and the NLL table of the scoring tasks
// docs/adding_a_task.md walks through a new task built on them.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/outputs/record_journal.h"
#include "experiments/task.h"
#include "framework/core/progress.h"
#include "parallel/communicator.h"

namespace lminf {

// Whether a spec has `void check(const SpecSource&) const` (rules between keys).
template <class Spec, class = void>
struct has_spec_check : std::false_type {};
template <class Spec>
struct has_spec_check<Spec, std::void_t<decltype(std::declval<const Spec&>().check(std::declval<const SpecSource&>()))>>
    : std::true_type {};

// A task's section: `type`, the key that picked the task (Spec::kType), then the task's own keys.
template <class Spec>
struct TaskSection : Spec {
  std::string type = Spec::kType;
  template <class V>
  void visit(V& v) {
    v("type", type, "the task", Required{});
    Spec::visit(v);
  }
};

// A task whose own keys are the visit() struct Spec (with its name in Spec::kType). The section is
// read (and every problem of it reported at once) by the spec machinery; the spec's check(), where
// it has one, adds what one key's rules cannot say (relations between keys).
template <class Spec>
class SpecTask : public Task {
 public:
  using Section = TaskSection<Spec>;
  std::string name() const override { return Spec::kType; }
  void configure(const YAML::Node& section, const SpecSource& src) override {
    read_spec(section, spec_, src, "task");
    if constexpr (has_spec_check<Spec>::value) spec_.check(src);
  }
  YAML::Node resolved() const override { return write_spec(spec_); }
  const Spec& spec() const { return spec_; }

 protected:
  Section spec_;
};

// Replica `rank` of `n` takes items rank, rank + n, rank + 2n, ... of `total` (disjoint, the same on
// every run, so a resumed run's replicas take the items their journals hold).
std::vector<int64_t> data_parallel_items(int64_t total, int64_t n, int64_t rank);

// This rank's share of a task's `total` items under ctx.data_parallel (all of them without it).
class DataParallelShare {
 public:
  DataParallelShare(const RunContext& ctx, int64_t total);
  DataParallelShare(const DataParallelShare&) = delete;
  DataParallelShare& operator=(const DataParallelShare&) = delete;

  Communicator& comm() { return *dp_; }  // the data-parallel group (a local one for one replica)
  int64_t replicas() const { return replicas_; }
  int64_t total() const { return total_; }
  const std::vector<int64_t>& items() const { return items_; }  // in file order
  // Rows of each replica's part: ceil(total / replicas); item i is row i / replicas of replica i % replicas.
  int64_t rows() const { return (total_ + replicas_ - 1) / replicas_; }
  // Every replica's rows of `part` ([rows(), ...]) gathered back into item order ([total, ...]).
  at::Tensor gather_rows(const at::Tensor& part);
  // ", N data-parallel replicas" for a task's opening log line ("" for one replica).
  std::string log_suffix() const;

 private:
  LocalCommunicator single_;
  Communicator* dp_;
  int64_t total_, replicas_;
  std::vector<int64_t> items_;
};

struct RecordLoopOptions {
  std::string stem;           // the journal: <stem>.partial.jsonl
  int64_t flush_every = 1;    // task.flush_every
  std::string label, unit;    // of the progress line
};

// The help text of a record task's flush_every key (its journal: <stem>.partial.jsonl).
std::string journal_flush_help(const std::string& stem);

// The resumable loop of a record task over its share: samples a journal holds are taken from it,
// the others are made and recorded; after the loop every replica's records are merged; world rank 0
// writes results.json (with resumed_samples and elapsed_s) and the journals are removed.
class RecordLoop {
 public:
  // The journal's compatibility check ignores flush_every. Collective (the journal shares its samples).
  RecordLoop(RunContext& ctx, DataParallelShare& share, const YAML::Node& task_resolved, const RecordLoopOptions& o);

  const std::vector<int64_t>& items() const { return share_.items(); }
  // The journalled entry of sample `index`, or nullptr when this run makes it.
  const nlohmann::json* journalled(int64_t index) const { return journal_.find(index); }
  // A sample this run made: journalled (entry holds "index") and counted.
  void record(nlohmann::json entry);
  // After the loop: the journal is written out and every replica's `mine` records merged (collective).
  nlohmann::json merge(const nlohmann::json& mine);
  // The end of the loop without the JSON merge (a task that merges otherwise).
  void end();
  // Seconds of the loop (fixed by end()/merge()).
  double elapsed_s() const { return elapsed_s_ >= 0 ? elapsed_s_ : progress_.elapsed_s(); }
  const RecordJournal& journal() const { return journal_; }
  // Rank 0: writes results.json (plus resumed_samples, elapsed_s); then every rank removes the journals.
  void finish(const RunContext& ctx, nlohmann::json results);
  void finish() { journal_.finish(); }  // the other ranks

 private:
  DataParallelShare& share_;
  RecordJournal journal_;
  Progress progress_;
  double elapsed_s_ = -1;
};

// A batch of token sequences right-padded with id 0 into [rows.size(), longest] int64 (causal models
// never read the padding).
at::Tensor right_padded_batch(const std::vector<const std::vector<int64_t>*>& rows);

// Prints a table of NLL buckets ({start, end, tokens, mean_nll, ppl}, end exclusive) and a last row
// "all" to stdout; `first` heads the positions column, widths: of that column and of the tokens column.
void print_nll_table(const nlohmann::json& buckets, const char* first, int position_width, int tokens_width,
                     int64_t tokens, double mean_nll, double ppl);

}  // namespace lminf
