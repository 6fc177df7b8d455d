#include "experiments/run/run_experiment.h"

#include <ATen/Parallel.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <iostream>
#include <ctime>
#include <fstream>

#include "analysis/report/analyze.h"
#include "attention/registry.h"
#include "experiments/outputs/output_stage.h"
#include "experiments/outputs/outputs.h"
#include "experiments/outputs/record_journal.h"
#include "experiments/run/sweep.h"
#include "experiments/data/sequence_source.h"
#include "framework/io/atomic_file.h"
#include "framework/core/error.h"
#include "framework/io/checkpoint.h"
#include "framework/core/logging.h"
#include "framework/core/process_memory.h"
#include "framework/core/threads.h"
#include "framework/text/tokenizer.h"
#include "framework/core/version.h"
#include "models/causal_lm.h"
#include "models/model_families.h"
#include "parallel/device.h"
#include "parallel/process_grid.h"
#include "parallel/shard.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

// Every rank's [weight bytes resident, checkpoint bytes read, peak resident memory (VmHWM)], gathered
// over `world` (collective): [world, 3] int64, row r = world rank r.
at::Tensor gather_rank_memory(Communicator& world, int64_t weight_bytes, int64_t bytes_read) {
  at::Tensor mine = at::tensor(std::vector<int64_t>{weight_bytes, bytes_read, peak_resident_bytes()}, at::kLong);
  return world.all_gather(mine.view({1, 3}), 0);
}

std::vector<int64_t> column(const at::Tensor& t, int64_t c) {
  at::Tensor col = t.select(1, c).contiguous();
  return std::vector<int64_t>(col.data_ptr<int64_t>(), col.data_ptr<int64_t>() + col.numel());
}

// The outputs this task writes (for the overwrite check), its dump included.
std::vector<std::string> task_outputs(const LoadedExperiment& exp) {
  std::vector<std::string> outputs = exp.task->outputs();
  if (exp.spec.dump.enabled()) outputs.push_back(exp.spec.dump.file);
  return outputs;
}

// Rank 0: output.dir checked (no silent overwrite), the staging folder of the final outputs made
// (outputs/output_stage.h) and config.yaml written into it.
void prepare_outputs(const LoadedExperiment& exp, const fs::path& out_dir, const std::string& resolved_text) {
  const ExperimentSpec& spec = exp.spec;
  std::vector<std::string> outputs = task_outputs(exp);
  // A record task killed while writing its final files (results.json comes last) resumes from its journal.
  if (!fs::exists(out_dir / "results.json") && has_record_journal(out_dir)) outputs = {"results.json"};
  prepare_output_dir(out_dir, outputs, spec.output.overwrite);
  const fs::path stage = begin_staging(out_dir);
  write_file_atomic(stage / "config.yaml", resolved_text);
  log_info("experiment ", spec.name, ": resolved spec written to ", (stage / "config.yaml").string(),
           " (moved into ", out_dir.string(), " with the other outputs when the run completes)");
}

// Rank 0, once every rank is done: the staged outputs replace the earlier run's. A folder written
// before staging has no record of its outputs: those of this task, config.yaml and the default dump
// are taken to be the earlier run's.
void publish_outputs(const LoadedExperiment& exp, const fs::path& out_dir) {
  std::vector<std::string> fallback = task_outputs(exp);
  fallback.insert(fallback.end(), {"config.yaml", "results.json", "token_nll.h5", DumpSpec().file});
  const std::vector<std::string> names = publish_staging(out_dir, fallback);
  log_info("experiment ", exp.spec.name, ": ", names.size(), " outputs in ", out_dir.string());
}

// The provenance every output carries, before a model is loaded.
nlohmann::json run_provenance(const ExperimentSpec& spec, const std::string& resolved_text, const Communicator& world) {
  nlohmann::json prov;
  prov["name"] = spec.name;
  prov["config"] = resolved_text;
  prov["git_revision"] = git_revision();
  prov["lminf_version"] = version();
  prov["libtorch_version"] = libtorch_version();
  prov["host"] = host_name();  // rank 0's machine
  prov["world_size"] = world.size();
  prov["tensor_parallel"] = spec.parallel.tensor_parallel;
  prov["data_parallel"] = spec.parallel.data_parallel;
  prov["created"] = utc_now();
  return prov;
}

// The run's model on this rank: its slices of the checkpoint, on its device, in the run dtype.
struct RunModel {
  LoadOptions lo;
  std::unique_ptr<Communicator> gpu_tp;  // NCCL over this rank's tensor-parallel group
  std::unique_ptr<CausalLM> model;
  int64_t bytes_read = 0;
};

void load_run_model(const LoadedExperiment& exp, ProcessGrid& grid, RunModel& m) {
  const ExperimentSpec& spec = exp.spec;
  m.lo.dtype = parse_dtype(spec.model.dtype, "model.dtype");
  m.lo.tp = &grid.tp();
  std::string device_problem;
  m.lo.device = parse_device(spec.model.device, device_problem).value_or(at::Device(at::kCPU));  // checked on load
  m.gpu_tp = device_communicator(grid.tp(), m.lo.device, spec.parallel.communicator);  // NCCL or host-staged MPI on GPUs
  if (m.gpu_tp) m.lo.tp = m.gpu_tp.get();
  auto start = std::chrono::steady_clock::now();
  {
    Checkpoint ckpt = Checkpoint::open(spec.model.path);  // memory-mapped; each rank reads its slices
    m.model = load_model(ckpt, exp.model_config, m.lo);
    m.bytes_read = static_cast<int64_t>(ckpt.bytes_read());
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_info("model ", spec.model.path, ": ", exp.model_config.model_type, ", ", parameter_count(exp.model_config),
           " parameters, ", m.model->weight_bytes() / (1024.0 * 1024.0), " MiB of weights on rank 0, loaded in ",
           load_s, " s");
}

constexpr double kMiB = 1024.0 * 1024.0;

}  // namespace

namespace {
void run_staged(LoadedExperiment& exp, Communicator& world);
}  // namespace

// On failure (or an interrupt), rank 0 says what the folder holds before the error goes up.
void run_experiment(LoadedExperiment& exp, Communicator& world) {
  try {
    run_staged(exp, world);
  } catch (const std::exception&) {
    const fs::path dir = exp.spec.output.dir;
    if (world.rank() == 0 && has_unfinished_run(dir))
      log_warn("output.dir: the run did not complete, so nothing of it was moved into ", dir.string(),
               ": the outputs of an earlier run there are untouched; its resume state (if the task has one) is "
               "kept and the partial final files in ", staging_dir(dir).string(), " are removed by the next run");
    throw;
  }
}

namespace {

void run_staged(LoadedExperiment& exp, Communicator& world) {
  const ExperimentSpec& spec = exp.spec;
  if (spec.threads > 0) set_compute_threads(static_cast<int>(spec.threads));
  const bool writer = world.rank() == 0;
  const fs::path out_dir = spec.output.dir;
  const std::string resolved_text = to_yaml_string(exp.resolved);
  if (writer) prepare_outputs(exp, out_dir, resolved_text);
  world.barrier();

  nlohmann::json prov = run_provenance(spec, resolved_text, world);
  if (!exp.task->needs_model()) {
    ProducerContext pctx{spec, world, out_dir, staging_dir(out_dir), writer, prov};
    exp.task->run_producer(pctx);
    world.barrier();
    if (writer) publish_outputs(exp, out_dir);
    return;
  }

  // tensor_parallel x data_parallel == world size was checked by load_experiment, before any weight.
  ProcessGrid grid(world, static_cast<int>(spec.parallel.tensor_parallel),
                   static_cast<int>(spec.parallel.data_parallel));
  RunModel m;
  load_run_model(exp, grid, m);
  const at::Tensor loaded = gather_rank_memory(world, m.model->weight_bytes(), m.bytes_read);
  for (int64_t r = 0; r < loaded.size(0); ++r)
    log_info("rank ", r, " (tp ", r % grid.tp_size(), ", dp ", r / grid.tp_size(), "): ",
             loaded[r][0].item<int64_t>() / kMiB, " MiB of weights resident, ", loaded[r][1].item<int64_t>() / kMiB,
             " MiB read from the checkpoint");
  auto attention = make_attention(spec.attention);

  prov["model_path"] = fs::absolute(spec.model.path).string();
  prov["model_type"] = exp.model_config.model_type;
  prov["dtype"] = spec.model.dtype;
  prov["device"] = m.lo.device.str();
  prov["tp_communicator"] = m.lo.tp->name();
  prov["variant"] = spec.attention.variant;
  prov["weight_bytes_per_rank"] = column(loaded, 0);

  RunContext ctx{spec, exp.model_config, *m.model, *attention, world, out_dir, staging_dir(out_dir), writer, prov, {}};
  ctx.data_parallel = &grid.dp();
  exp.task->run(ctx);
  world.barrier();
  if (writer) publish_outputs(exp, out_dir);
  const at::Tensor done = gather_rank_memory(world, m.model->weight_bytes(), m.bytes_read);
  for (int64_t r = 0; r < done.size(0); ++r)
    log_info("rank ", r, ": peak resident memory (VmHWM) ", done[r][2].item<int64_t>() / kMiB, " MiB");
}

}  // namespace

namespace {

// results.json of a resumable task that has not finished (`"complete": false`).
bool results_incomplete(const fs::path& results) {
  if (!fs::exists(results)) return false;
  try {
    std::ifstream in(results);
    const auto j = nlohmann::json::parse(in);
    return j.contains("complete") && j["complete"].is_boolean() && !j["complete"].get<bool>();
  } catch (const std::exception&) {
    return false;  // unreadable: treated as complete, as before (the table reports it)
  }
}

// The overlay plots of a sweep: every point's per-token NLL (and factor dump) in one `lminf analyze`
// run into output.dir/analysis, each labelled by its point's values. The table is the sweep's main
// output, so a failure here (no gnuplot, outputs analyze does not read) is a warning.
void overlay_sweep(const fs::path& base_dir, const std::vector<SweepPoint>& points, const std::string& dump_file) {
  AnalyzeOptions opts;
  for (const auto& p : points) {
    std::string label;
    for (const auto& kv : p.overrides) label += (label.empty() ? "" : " ") + kv.second;
    const fs::path dir = base_dir / sweep_folder_name(p);
    for (const std::string& name : {std::string("token_nll.h5"), dump_file}) {
      if (name.empty() || !fs::exists(dir / name)) continue;
      opts.inputs.push_back(dir / name);
      opts.labels.push_back(label.empty() ? p.name : label);
    }
  }
  if (opts.inputs.empty()) return;
  opts.out_dir = base_dir / "analysis";
  opts.overwrite = true;
  try {
    analyze(opts);
    log_info("sweep: overlay tables and plots of ", opts.inputs.size(), " outputs in ", opts.out_dir.string());
  } catch (const std::exception& e) {
    log_warn("sweep: overlay plots skipped: ", e.what());
  }
}

}  // namespace

void run_file(const std::string& file, const std::vector<std::string>& overrides, Communicator& world, bool dry_run) {
  SpecSource src;
  src.file = file;
  YAML::Node root = load_yaml_file(file);
  if (root.IsMap())
    for (const auto& o : overrides) apply_override(root, o, src);
  const YAML::Node sweep = root.IsMap() ? root["sweep"] : YAML::Node();
  if (!sweep || sweep.IsNull()) {
    LoadedExperiment exp = load_experiment(file, overrides, world.size());
    if (dry_run) {
      if (world.rank() == 0) std::cout << to_yaml_string(exp.resolved);
      return;
    }
    run_experiment(exp, world);
    return;
  }
  const std::vector<SweepPoint> points = expand_sweep(sweep, file);
  // Validate every point before running any, so a typo in the last point does not waste the first.
  LoadedExperiment base = load_experiment(file, [&] {
    auto o = overrides;
    o.push_back("sweep=null");
    return o;
  }(), world.size());
  const fs::path base_dir = base.spec.output.dir;
  std::vector<std::vector<std::string>> point_overrides;
  for (const auto& p : points) {
    std::vector<std::string> o = overrides;
    for (const auto& [k, v] : p.overrides) o.push_back(k + "=" + v);
    o.push_back("sweep=null");
    o.push_back("output.dir=" + (base_dir / sweep_folder_name(p)).string());
    LoadedExperiment check = load_experiment(file, o, world.size());
    if (dry_run && world.rank() == 0) std::cout << "# point " << p.name << "\n" << to_yaml_string(check.resolved);
    point_overrides.push_back(o);
  }
  if (dry_run) return;
  if (world.rank() == 0) write_sweep_manifest(base_dir, points);
  for (size_t i = 0; i < points.size(); ++i) {
    const fs::path dir = base_dir / sweep_folder_name(points[i]);
    // A point killed before its outputs were published has no results.json but its staging folder
    // (and, for the resumable tasks, their journal or stream state), which the run resumes from
    // instead of starting over; a folder of an lminf before staging, a record journal or a
    // results.json with `complete: false`. A point whose results.json exists is complete.
    const bool partial = !base.spec.output.overwrite &&
                         (results_incomplete(dir / "results.json") ||
                          (!fs::exists(dir / "results.json") && (has_unfinished_run(dir) || has_record_journal(dir))));
    if (!base.spec.output.overwrite && fs::exists(dir / "results.json") && !partial) {
      log_info("sweep: point ", i + 1, "/", points.size(), " ", points[i].name, " already complete in ", dir.string(),
               " (skipped)");
      continue;
    }
    log_info("sweep: point ", i + 1, "/", points.size(), " ", points[i].name);
    // A point killed before its results.json is redone from scratch; one whose results.json says
    // `complete: false` (a resumable task such as streaming_perplexity) resumes where it stopped.
    std::vector<std::string> o = point_overrides[i];
    if (partial)
      log_info("sweep: point ", i + 1, " did not complete (its staging folder, a record journal, or results.json: "
               "complete: false); resuming it");
    else
      o.push_back("output.overwrite=true");
    LoadedExperiment exp = load_experiment(file, o, world.size());
    run_experiment(exp, world);
  }
  if (world.rank() == 0) {
    fs::create_directories(base_dir);
    const std::string md = write_sweep_table(base_dir, points);
    std::cout << "\n" << md;
    log_info("sweep: table written to ", (base_dir / "sweep.md").string(), " and sweep.csv");
    overlay_sweep(base_dir, points, base.spec.dump.enabled() ? base.spec.dump.file : std::string());
  }
}

}  // namespace lminf
