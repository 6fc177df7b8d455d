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
#include "parallel/process_grid.h"
#include "parallel/shard.h"
#ifdef LMINF_WITH_NCCL
#include "parallel/nccl_communicator.h"
#endif

namespace lminf {
namespace fs = std::filesystem;

namespace {

// This process's node-local rank under mpirun (0 without it).
int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return 0;
}

// model.device -> a device, or a problem message (empty device when the text is not a device).
std::optional<at::Device> parse_device(const std::string& text, std::string& problem) {
  if (text == "cpu") return at::Device(at::kCPU);
  if (text != "cuda" && text.rfind("cuda:", 0) != 0) {
    problem = "model.device: \"" + text + "\" is not a device (use cpu, cuda or cuda:N)";
    return std::nullopt;
  }
  int index = -1;  // -1: "cuda", this rank's local rank modulo the GPUs seen
  if (text != "cuda") {
    const std::string digits = text.substr(5);
    if (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string::npos) {
      problem = "model.device: \"" + text + "\" is not a device (use cpu, cuda or cuda:N)";
      return std::nullopt;
    }
    index = std::atoi(digits.c_str());
  }
  if (!at::hasCUDA()) {
    problem = "model.device: " + text +
              " asked for, but this lminf is built against a CPU-only libtorch or sees no GPU (build against a "
              "CUDA-enabled libtorch with CMAKE_PREFIX_PATH, see docs/parallel.md; or set model.device: cpu)";
    return std::nullopt;
  }
  const int n = static_cast<int>(at::getNumGPUs());
  if (index < 0) index = local_rank() % std::max(n, 1);
  if (index >= n) {
    problem = "model.device: " + text + " but this process sees " + std::to_string(n) + " GPU(s)";
    return std::nullopt;
  }
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string location(const YAML::Node& node, const SpecSource& src, const std::string& key) {
  auto it = src.overridden.find(key);
  if (it != src.overridden.end()) return it->second + ": ";
  const YAML::Mark m = node.Mark();
  if (!src.file.empty() && m.line >= 0) {
    return src.file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": ";
  }
  return src.file.empty() ? "" : src.file + ": ";
}

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

std::string utc_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// A YAML value as JSON: unquoted scalars become numbers, booleans or null where they read as such.
nlohmann::json yaml_to_json(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return nullptr;
  if (n.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (auto it = n.begin(); it != n.end(); ++it) j[it->first.as<std::string>()] = yaml_to_json(it->second);
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : n) j.push_back(yaml_to_json(e));
    return j;
  }
  const std::string& s = n.Scalar();
  if (n.Tag() != "!") {  // not quoted
    int64_t i = 0;
    double d = 0;
    bool b = false;
    if (YAML::convert<int64_t>::decode(n, i)) return i;
    if (YAML::convert<double>::decode(n, d)) return d;
    if (YAML::convert<bool>::decode(n, b)) return b;
  }
  return s;
}

// model.rope_scaling / model.rope_theta: the RoPE-scaling baselines, as overrides of config.json.
void apply_rope_overrides(const ModelSpec& ms, const YAML::Node& root, const SpecSource& src, ModelConfig& mc,
                          std::vector<std::string>& problems) {
  if (mc.alibi && (!ms.rope_scaling.IsNull() || ms.rope_theta)) {
    problems.push_back("model.rope_scaling / model.rope_theta: model_type " + mc.model_type +
                       " uses ALiBi, not rotary embeddings (" + mc.source.string() + "); remove them");
    return;
  }
  if (!ms.rope_scaling.IsNull()) {
    const std::string where =
        location(root["model"]["rope_scaling"], src, "model.rope_scaling") + "model.rope_scaling";
    if (!ms.rope_scaling.IsMap()) {
      problems.push_back(where + ": expected a map such as {rope_type: linear, factor: 2.0}, or null");
    } else {
      try {
        mc.rope_scaling = RopeScaling::from_json(yaml_to_json(ms.rope_scaling), where);
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
  }
  if (ms.rope_theta) {
    if (!(*ms.rope_theta > 1.0))
      problems.push_back(location(root["model"]["rope_theta"], src, "model.rope_theta") +
                         "model.rope_theta must be > 1");
    else mc.rope_theta = *ms.rope_theta;
  }
  if (ms.rope_scaling.IsMap() || ms.rope_theta)
    log_info("model: RoPE overrides applied: rope_theta ", mc.rope_theta, ", rope_scaling ",
             mc.rope_scaling.to_json().dump());
}

// data.prepend_bos absent from the YAML (and from --set): when the tokenizer's tokenizer_config.json
// (data.tokenizer, else model.path) states add_bos_token, the default follows it -- GPT-2/GPT-NeoX
// style tokenizers (GPT-J, MPT) say false, Llama's say true. The value used is logged and written to
// config.yaml with the rest of the resolved spec.
void follow_add_bos_token(const YAML::Node& root, ExperimentSpec& spec, std::vector<std::string>& problems) {
  const YAML::Node data = root["data"];
  if (data && data.IsMap() && data["prepend_bos"]) return;  // explicit
  fs::path dir = spec.data.tokenizer.empty() ? fs::path(spec.model.path) : fs::path(spec.data.tokenizer);
  if (!fs::is_directory(dir)) dir = dir.parent_path();
  if (dir.empty() || !fs::exists(dir / "tokenizer_config.json")) return;
  try {
    const TokenizerConfig tc = TokenizerConfig::from_dir(dir);
    if (tc.add_bos_token && *tc.add_bos_token != spec.data.prepend_bos) {
      spec.data.prepend_bos = *tc.add_bos_token;
      log_info("data.prepend_bos: ", spec.data.prepend_bos ? "true" : "false", ", as add_bos_token in ",
               tc.source.string(), " (set data.prepend_bos to choose)");
    }
  } catch (const Error& e) {
    problems.push_back(e.what());
  }
}

}  // namespace

LoadedExperiment load_experiment(const std::string& file, const std::vector<std::string>& overrides, int world_size) {
  LoadedExperiment exp;
  exp.source.file = file;
  YAML::Node root = load_yaml_file(file);
  if (!root.IsMap()) fail(file, ": expected a YAML map of sections (name, model, attention, data, task, output)");
  for (const auto& o : overrides) apply_override(root, o, exp.source);
  read_spec(root, exp.spec, exp.source);
  ExperimentSpec& spec = exp.spec;

  // The task section: its type picks the task, which validates the rest.
  const YAML::Node task_node = spec.task;
  if (!task_node.IsMap() || !task_node["type"])
    fail(location(task_node, exp.source, "task"), "task: a map with a \"type\" key is required (e.g. task: {type: perplexity})");
  exp.task = make_task(task_node["type"].as<std::string>(), location(task_node["type"], exp.source, "task.type"));
  exp.task->configure(task_node, exp.source);

  // Everything else that can be checked without reading weights; all problems in one message.
  std::vector<std::string> problems;
  const int64_t tp = spec.parallel.tensor_parallel, dp = spec.parallel.data_parallel;
  if (tp * dp != world_size) {
    problems.push_back("parallel: tensor_parallel (" + std::to_string(tp) + ") x data_parallel (" + std::to_string(dp) +
                       ") must equal the number of ranks (" + std::to_string(world_size) +
                       (world_size == 1 ? "; launch with mpirun -np N for more" : "") + ")");
  }
  if (exp.task->needs_model()) {
    if (spec.model.path.empty())
      fail(location(root["model"], exp.source, "model"), "model.path: required by task ", exp.task->name(),
           " (set model.path to a Hugging Face model folder)");
    try {
      exp.model_config = ModelConfig::from_file(spec.model.path);
    } catch (const Error& e) {
      fail(location(root["model"]["path"], exp.source, "model.path"), "model.path: ", e.what());
    }
    apply_rope_overrides(spec.model, root, exp.source, exp.model_config, problems);
    std::string device_problem;
    const auto device = parse_device(spec.model.device, device_problem);
    if (!device) problems.push_back(location(root["model"]["device"], exp.source, "model.device") + device_problem);
    if (device && device->is_cuda()) {
      if (spec.dump.enabled())
        problems.push_back("model.device: the dump: section's observers run on the CPU only so far (set model.device: cpu)");
#ifndef LMINF_WITH_NCCL
      if (tp > 1)
        problems.push_back("model.device: cuda with parallel.tensor_parallel > 1 needs the NCCL communicator; this lminf "
                           "was built without NCCL (docs/parallel.md)");
#endif
    }
    const ModelConfig& mc = exp.model_config;
    for (auto& p : attention_problems(spec.attention, mc, static_cast<int>(tp))) problems.push_back(p);
    const std::string shard_problem =
        tp_incompatibility(mc.n_head, mc.n_head_kv, mc.intermediate_size, mc.vocab_size, static_cast<int>(tp));
    if (!shard_problem.empty()) problems.push_back("parallel.tensor_parallel: " + shard_problem);
    if (!exp.task->reads_data()) {
      if (!spec.data.path.empty())
        problems.push_back(location(root["data"], exp.source, "data") + "data: task " + exp.task->name() +
                           " makes its own inputs and reads no data (remove the data section)");
    } else if (spec.data.path.empty()) {
      problems.push_back(location(root["data"], exp.source, "data") + "data.path: required by task " +
                         exp.task->name() + " (a data file, folder or glob)");
    } else {
      for (auto& p : data_problems(spec.data, mc)) problems.push_back(location(root["data"], exp.source, "data") + p);
      follow_add_bos_token(root, spec, problems);
      if (spec.data.prepend_bos && mc.bos_token_id < 0)
        problems.push_back("data.prepend_bos: the model's config.json has no bos_token_id (set data.prepend_bos: false)");
    }
  } else if (spec.model.device != "cpu") {
    problems.push_back(location(root["model"]["device"], exp.source, "model.device") + "model.device: task " +
                       exp.task->name() + " runs on the CPU only (set model.device: cpu)");
  } else if (spec.data.path.empty()) {
    problems.push_back(location(root["data"], exp.source, "data") + "data.path: required by task " + exp.task->name() +
                       " (a data file, folder or glob)");
  } else if (!fs::exists(spec.data.path)) {
    problems.push_back(location(root["data"]["path"], exp.source, "data.path") + "data.path: " + spec.data.path +
                       " does not exist");
  }
  const ModelConfig& mc = exp.model_config;
  for (auto& p : exp.task->problems(spec, mc)) problems.push_back(p);
  if (spec.dump.enabled() && !exp.task->needs_model())
    problems.push_back("dump: task " + exp.task->name() + " runs no model to observe (remove the dump section)");
  else
    for (auto& p : dump_problems(spec.dump, mc, spec.parallel.data_parallel)) problems.push_back(p);
  if (!problems.empty()) {
    std::string msg = file + ": the experiment cannot run:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(msg);
  }

  exp.resolved = write_spec(spec);
  exp.resolved["task"] = exp.task->resolved();
  if (!exp.task->reads_data()) exp.resolved.remove("data");
  return exp;
}

namespace {

// Rank 0: output.dir checked (no silent overwrite) and config.yaml written.
void prepare_outputs(const LoadedExperiment& exp, const fs::path& out_dir, const std::string& resolved_text) {
  const ExperimentSpec& spec = exp.spec;
  std::vector<std::string> outputs = exp.task->outputs();
  if (spec.dump.enabled()) outputs.push_back(spec.dump.file);
  // A record task killed while writing its final files (results.json comes last) resumes from its journal.
  if (!fs::exists(out_dir / "results.json") && has_record_journal(out_dir)) outputs = {"results.json"};
  prepare_output_dir(out_dir, outputs, spec.output.overwrite);
  write_file_atomic(out_dir / "config.yaml", resolved_text);
  log_info("experiment ", spec.name, ": resolved spec written to ", (out_dir / "config.yaml").string());
}

// The provenance every output carries, before a model is loaded.
nlohmann::json run_provenance(const ExperimentSpec& spec, const std::string& resolved_text, const Communicator& world) {
  nlohmann::json prov;
  prov["name"] = spec.name;
  prov["config"] = resolved_text;
  prov["git_revision"] = git_revision();
  prov["lminf_version"] = version();
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
#ifdef LMINF_WITH_NCCL
  if (m.lo.device.is_cuda()) {
    m.gpu_tp = std::make_unique<NcclCommunicator>(grid.tp(), m.lo.device.index());
    m.lo.tp = m.gpu_tp.get();
  }
#endif
  auto start = std::chrono::steady_clock::now();
  {
    Checkpoint ckpt = Checkpoint::open(spec.model.path);  // memory-mapped; each rank reads its slices
    m.model = load_model(ckpt, exp.model_config, m.lo);
    m.bytes_read = static_cast<int64_t>(ckpt.bytes_read());
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log_info("model ", spec.model.path, ": ", exp.model_config.model_type, ", ", exp.model_config.n_params(),
           " parameters, ", m.model->weight_bytes() / (1024.0 * 1024.0), " MiB of weights on rank 0, loaded in ",
           load_s, " s");
}

constexpr double kMiB = 1024.0 * 1024.0;

}  // namespace

void run_experiment(LoadedExperiment& exp, Communicator& world) {
  const ExperimentSpec& spec = exp.spec;
  if (spec.threads > 0) set_compute_threads(static_cast<int>(spec.threads));
  const bool writer = world.rank() == 0;
  const fs::path out_dir = spec.output.dir;
  const std::string resolved_text = to_yaml_string(exp.resolved);
  if (writer) prepare_outputs(exp, out_dir, resolved_text);
  world.barrier();

  nlohmann::json prov = run_provenance(spec, resolved_text, world);
  if (!exp.task->needs_model()) {
    ProducerContext pctx{spec, world, out_dir, writer, prov};
    exp.task->run_producer(pctx);
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

  RunContext ctx{spec, exp.model_config, *m.model, *attention, world, out_dir, writer, prov, {}};
  ctx.data_parallel = &grid.dp();
  exp.task->run(ctx);
  const at::Tensor done = gather_rank_memory(world, m.model->weight_bytes(), m.bytes_read);
  for (int64_t r = 0; r < done.size(0); ++r)
    log_info("rank ", r, ": peak resident memory (VmHWM) ", done[r][2].item<int64_t>() / kMiB, " MiB");
}

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
    for (const std::string name : {std::string("token_nll.h5"), dump_file}) {
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
  for (size_t i = 0; i < points.size(); ++i) {
    const fs::path dir = base_dir / sweep_folder_name(points[i]);
    // A point killed before its final outputs leaves a record journal (passkey, generation, qa).
    const bool partial = !base.spec.output.overwrite &&
                         (results_incomplete(dir / "results.json") ||
                          (!fs::exists(dir / "results.json") && has_record_journal(dir)));
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
      log_info("sweep: point ", i + 1, " is incomplete (results.json: complete: false, or a record journal); resuming it");
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
