// The journal that makes the sample-based tasks (passkey, generation, qa) resumable: every sample a
// run completes is appended, as one JSON line {"index": i, ...} with what the model generated for it,
// to a partial file in output.dir, flushed and fsync'd every task.flush_every samples. A run that
// finds a journal of the same configuration (experiments/outputs/resume_config.h) skips the samples it
// holds; one of another configuration is refused, naming the keys that differ, unless
// output.overwrite. The final outputs are written from the journal's samples and the new ones as an
// uninterrupted run writes them, then the journal is removed.
//
//   <stem>.partial.jsonl        (one replica), or <stem>.partial.dp<r>.jsonl for data-parallel
//                               replica r; each written by its replica's tensor-parallel rank 0.
//   line 1: {"schema": "lminf.record_journal", "schema_version": 1, "config_hash", "resume_config",
//            "data_parallel", "replica"}; then one line per sample. A last line without its newline
//            (a run killed while writing it) is dropped.
// A resumed run must use the same data_parallel (the journals are per replica): another is refused.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/task.h"

namespace lminf {

struct RecordJournalOptions {
  std::filesystem::path dir;  // output.dir
  std::string stem;           // e.g. "samples": samples.partial.jsonl
  std::string resume_config;  // experiments/outputs/resume_config.h: a journal resumes only with the same text
  int64_t replica = 0, replicas = 1;  // data-parallel replica of this process, of how many
  bool writer = true;         // this process writes its replica's journal (tensor-parallel rank 0)
  bool checker = true;        // this process refuses (or with overwrite removes) other replicas' stray journals
  bool overwrite = false;     // output.overwrite: start over, removing any journal
  int64_t flush_every = 1;    // samples between writes + fsync (also flushed after flush_interval_s)
  double flush_interval_s = 60;
};

class RecordJournal {
 public:
  // Reads (and checks) this replica's journal, then shares its samples with every rank of `world`
  // (collective: the tensor-parallel peers of a replica skip the same samples).
  RecordJournal(RecordJournalOptions opts, Communicator& world);
  ~RecordJournal();
  RecordJournal(const RecordJournal&) = delete;
  RecordJournal& operator=(const RecordJournal&) = delete;

  // The journalled entry of sample `index` of this replica, or nullptr when it is still to do.
  const nlohmann::json* find(int64_t index) const;
  // Samples of this replica / of every replica taken from journals.
  int64_t resumed() const { return static_cast<int64_t>(done_.size()); }
  int64_t resumed_everywhere() const { return static_cast<int64_t>(resumed_everywhere_.size()); }
  bool resumed_anywhere(int64_t index) const { return resumed_everywhere_.count(index) > 0; }
  // Records a completed sample (entry holds "index"); written per the flush options.
  void append(nlohmann::json entry);
  void flush();
  // After world rank 0 wrote the final outputs: a barrier of `world`, then each writer removes its journal.
  void finish();

  std::filesystem::path path() const { return path_; }
  // The journal file name of replica r of n.
  static std::string file_name(const std::string& stem, int64_t replica, int64_t replicas);

 private:
  void load();
  void check_strays();

  RecordJournalOptions opts_;
  Communicator& world_;
  std::filesystem::path path_;
  std::string hash_;
  std::map<int64_t, nlohmann::json> done_;
  std::set<int64_t> resumed_everywhere_;  // sample indices, every replica
  int fd_ = -1;
  std::string pending_;
  int64_t pending_count_ = 0, written_ = 0;
  int64_t kill_after_ = -1;  // fault injection for tests: LMINF_TEST_KILL_AFTER_RECORDS
  int kill_signal_ = SIGKILL;  // the signal it raises: LMINF_TEST_KILL_SIGNAL
  std::chrono::steady_clock::time_point last_flush_;
};

// The journal of a sample-based task's run in ctx.out_dir: one per data-parallel replica, written by
// its tensor-parallel rank 0; `ignored_task_keys` (flush_every) do not take part in the compatibility check.
RecordJournalOptions record_journal_options(const RunContext& ctx, const std::string& stem,
                                            const YAML::Node& task_resolved,
                                            const std::vector<std::string>& ignored_task_keys, int64_t flush_every);

// "" when output.dir holds no journal of this task (`stem`) or one this configuration resumes; else
// why not (another configuration, naming the keys; another data_parallel). For Task::problems, so
// an incompatible partial run is refused before any weight is read.
std::string record_journal_problem(const ExperimentSpec& spec, const YAML::Node& task_resolved,
                                   const std::vector<std::string>& ignored_task_keys, const std::string& stem);

// True when `dir` holds the journal of a run that did not finish (for sweeps: resume the point).
bool has_record_journal(const std::filesystem::path& dir);

}  // namespace lminf
