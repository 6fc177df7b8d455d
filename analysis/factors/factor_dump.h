// The factor dump of a run: builds the factor observers a `dump:` section asks for, attaches them to
// the run's observers, and appends their rows to an HDF5 file in output.dir after every batch
// (schema "lminf.factors", docs/hdf5.md). Any task can carry one:
//
//   auto dump = open_factor_dump(ctx, longest);      // experiments/outputs/run_factor_dump.h; null
//                                                    // when the spec has no dump
//   for each batch:
//     if (dump) dump->begin_batch(sequence_indices, lengths);
//     model.forward(ids, cache, {&attention, &ctx.observers});
//     if (dump) dump->end_batch();
//   if (dump) dump->finish();
//
// Tensor parallelism: every rank runs the observers on its own heads; end_batch() combines the
// records over the tensor-parallel group (sum or max per record, see analysis/factors/factor_observer.h) and
// rank 0 writes them, so the file holds every head.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/factors/dump_spec.h"
#include "analysis/factors/factor_observer.h"
#include "framework/io/h5_file.h"
#include "parallel/communicator.h"

namespace lminf {

struct FactorDumpOptions {
  DumpSpec spec;                  // a valid dump section (dump_problems() empty)
  ModelConfig model;
  int64_t max_length = 0;         // the longest sequence the task will feed (positions per record row)
  nlohmann::json provenance;      // root attributes (experiments/outputs/outputs.h)
  std::filesystem::path path;     // the dump file
  bool writer = true;             // this rank writes the file (rank 0)
  Communicator* tp = nullptr;     // tensor-parallel group; null = one rank
};

class FactorDump {
 public:
  explicit FactorDump(FactorDumpOptions opts);
  ~FactorDump();
  FactorDump(const FactorDump&) = delete;
  FactorDump& operator=(const FactorDump&) = delete;

  // Attach these to the forward calls.
  const std::vector<std::shared_ptr<FactorObserver>>& observers() const { return observers_; }

  // The next forward calls hold these sequences (indices into the task's sequence list) with these
  // real lengths; rows of sequences not selected by dump.sequences are not recorded.
  void begin_batch(const std::vector<int64_t>& sequences, const std::vector<int64_t>& lengths);
  void end_batch();
  // Whole-run records, complete = 1, and the file is committed (renamed into place when atomic).
  void finish();

  int64_t sequences_written() const { return sequences_written_; }
  const std::filesystem::path& path() const { return opts_.path; }

 private:
  void append(const FactorRecord& r);
  void combine(FactorRecord& r);

  FactorDumpOptions opts_;
  std::vector<std::shared_ptr<FactorObserver>> observers_;
  std::optional<H5Writer> h5_;
  std::map<std::string, H5Writer::Extendible> datasets_;
  std::vector<int64_t> batch_sequences_, batch_lengths_;  // the recorded rows of the batch
  int64_t sequences_written_ = 0, unflushed_ = 0;
  bool in_batch_ = false;
};

}  // namespace lminf
