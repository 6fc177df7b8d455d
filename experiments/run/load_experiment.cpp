// load_experiment(): YAML + --set overrides -> a validated experiment. Every problem that can be found
// without reading a weight is collected -- the spec sections, the task section, the model's
// config.json against the attention variant, the parallel layout, data and dumps -- and reported in
// one message, so a typo in one section does not hide a mistake in another.
#include <cmath>
#include <filesystem>
#include <functional>

#include "attention/registry.h"
#include "experiments/data/sequence_source.h"
#include "experiments/run/run_experiment.h"
#include "framework/core/error.h"
#include "framework/core/format.h"
#include "framework/core/logging.h"
#include "framework/core/process_memory.h"
#include "framework/text/tokenizer.h"
#include "models/model_config_json.h"
#include "models/model_families.h"
#include "parallel/device.h"
#include "parallel/shard.h"

namespace lminf {
namespace fs = std::filesystem;

namespace {

// "file:line:col: " of a YAML node, or "--set key=value: " when an override put it there.
std::string location(const YAML::Node& node, const SpecSource& src, const std::string& key) {
  auto it = src.overridden.find(key);
  if (it != src.overridden.end()) return it->second + ": ";
  const YAML::Mark m = node.Mark();
  if (!src.file.empty() && m.line >= 0) {
    return src.file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": ";
  }
  return src.file.empty() ? "" : src.file + ": ";
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
    if (!(*ms.rope_theta > 1.0) || !std::isfinite(*ms.rope_theta))
      problems.push_back(location(root["model"]["rope_theta"], src, "model.rope_theta") +
                         "model.rope_theta must be > 1 and finite");
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

using Problems = std::vector<std::string>;

// Runs `step`; an Error it throws becomes problems (one per line of its message).
void collect(Problems& problems, const std::function<void()>& step) {
  try {
    step();
  } catch (const Error& e) {
    std::string line;
    for (const char c : std::string(e.what()) + "\n") {
      if (c != '\n') {
        line += c;
      } else if (!line.empty()) {
        // A nested list item ("  - x") becomes a problem of its own.
        const std::size_t start = line.find_first_not_of(" -");
        problems.push_back(line.rfind("  - ", 0) == 0 ? line.substr(start) : line);
        line.clear();
      }
    }
  }
}

// The task named by task.type, configured from its section (throws naming file:line).
std::unique_ptr<Task> configure_task(const YAML::Node& task_node, const SpecSource& src) {
  if (!task_node.IsMap() || !task_node["type"])
    fail(location(task_node, src, "task"), "task: a map with a \"type\" key is required (e.g. task: {type: perplexity})");
  const YAML::Node type = task_node["type"];
  if (!type.IsScalar())
    fail(location(type, src, "task.type"), "task.type must be a task name (`lminf tasks` lists them), not a ",
         type.IsSequence() ? "list" : type.IsMap() ? "map" : "null", " (e.g. task: {type: perplexity})");
  std::unique_ptr<Task> task = make_task(type.as<std::string>(), location(type, src, "task.type"));
  task->configure(task_node, src);
  return task;
}

// model.device: a device this process can use with this parallel layout and dump section.
void check_device(YAML::Node root, const LoadedExperiment& exp, Problems& problems) {
  const ExperimentSpec& spec = exp.spec;
  std::string problem;
  const auto device = parse_device(spec.model.device, problem);
  if (!device) {
    problems.push_back(location(root["model"]["device"], exp.source, "model.device") + problem);
    return;
  }
  const CommunicatorChoice comm = choose_communicator(spec.parallel.communicator, *device);
  if (!comm.problem.empty()) {
    const YAML::Node par = root["parallel"];
    const YAML::Node key = par && par.IsMap() ? par["communicator"] : YAML::Node();
    problems.push_back(location(key, exp.source, "parallel.communicator") + comm.problem);
  }
  if (!device->is_cuda()) return;
  if (spec.dump.enabled())
    problems.push_back("model.device: the dump: section's observers run on the CPU only so far (set model.device: cpu)");
}

// The data section of a task that reads a model and data.
void check_model_data(YAML::Node root, LoadedExperiment& exp, Problems& problems) {
  ExperimentSpec& spec = exp.spec;
  const ModelConfig& mc = exp.model_config;
  const std::string where = location(root["data"], exp.source, "data");
  if (!exp.task->reads_data()) {
    if (!spec.data.path.empty())
      problems.push_back(where + "data: task " + exp.task->name() + " makes its own inputs and reads no data (remove the data section)");
    return;
  }
  if (spec.data.path.empty()) {
    problems.push_back(where + "data.path: required by task " + exp.task->name() + " (a data file, folder or glob)");
    return;
  }
  for (auto& p : data_problems(spec.data, mc)) problems.push_back(where + p);
  follow_add_bos_token(root, spec, problems);
  if (spec.data.prepend_bos && mc.bos_token_id < 0)
    problems.push_back("data.prepend_bos: the model's config.json has no bos_token_id (set data.prepend_bos: false)");
}

// The weights one rank holds, at the run dtype, against the memory this process may use: a model
// the machine cannot hold is refused before an allocation the kernel would answer with an OOM kill.
// (On a GPU the device's memory decides; libtorch reports it when it runs out.)
void check_model_memory(const ExperimentSpec& spec, const ModelConfig& mc, Problems& problems) {
  if (spec.model.device != "cpu") return;
  const int64_t available = available_memory_bytes();
  if (available <= 0) return;
  const double element = spec.model.dtype == "bfloat16" ? 2.0 : 4.0;
  const double bytes = static_cast<double>(parameter_count(mc)) * element /
                       static_cast<double>(std::max<int64_t>(1, spec.parallel.tensor_parallel));
  if (bytes <= static_cast<double>(available)) return;
  problems.push_back("model.path: " + mc.source.string() + ": the model has " + std::to_string(parameter_count(mc)) +
                     " parameters, " + format_bytes(bytes) + " per rank as " + spec.model.dtype +
                     ", more than the " + format_bytes(static_cast<double>(available)) +
                     " of memory this process may use (check the sizes in config.json, or use model.dtype: "
                     "bfloat16 / more tensor_parallel ranks)");
}

// A task that evaluates a model: its config.json, overrides, device, attention variant, tensor-parallel
// split and data. Throws when model.path is missing or unreadable (nothing else can be checked then).
void check_model_task(YAML::Node root, LoadedExperiment& exp, Problems& problems) {
  ExperimentSpec& spec = exp.spec;
  if (spec.model.path.empty())
    fail(location(root["model"], exp.source, "model"), "model.path: required by task ", exp.task->name(),
         " (set model.path to a Hugging Face model folder)");
  try {
    exp.model_config = load_model_config(spec.model.path);
  } catch (const Error& e) {
    fail(location(root["model"]["path"], exp.source, "model.path"), "model.path: ", e.what());
  }
  check_model_memory(spec, exp.model_config, problems);
  apply_rope_overrides(spec.model, root, exp.source, exp.model_config, problems);
  check_device(root, exp, problems);
  const ModelConfig& mc = exp.model_config;
  const int tp = static_cast<int>(spec.parallel.tensor_parallel);
  for (auto& p : attention_problems(spec.attention, mc, tp)) problems.push_back(p);
  const std::string shard_problem = tp_incompatibility(mc.n_head, mc.n_head_kv, mc.intermediate_size, mc.vocab_size, tp);
  if (!shard_problem.empty()) problems.push_back("parallel.tensor_parallel: " + shard_problem);
  check_model_data(root, exp, problems);
}

// A task that produces a model (pretrain): CPU only, and its training data must exist.
void check_producer_task(YAML::Node root, const LoadedExperiment& exp, Problems& problems) {
  const ExperimentSpec& spec = exp.spec;
  if (spec.model.device != "cpu") {
    problems.push_back(location(root["model"]["device"], exp.source, "model.device") + "model.device: task " +
                       exp.task->name() + " runs on the CPU only (set model.device: cpu)");
  } else if (spec.data.path.empty()) {
    problems.push_back(location(root["data"], exp.source, "data") + "data.path: required by task " + exp.task->name() +
                       " (a data file, folder or glob)");
  } else if (!fs::exists(spec.data.path)) {
    problems.push_back(location(root["data"]["path"], exp.source, "data.path") + "data.path: " + spec.data.path +
                       " does not exist");
  }
}

std::string parallel_problem(const ParallelSpec& p, int world_size) {
  if (p.tensor_parallel * p.data_parallel == world_size) return "";
  return "parallel: tensor_parallel (" + std::to_string(p.tensor_parallel) + ") x data_parallel (" +
         std::to_string(p.data_parallel) + ") must equal the number of ranks (" + std::to_string(world_size) +
         (world_size == 1 ? "; launch with mpirun -np N for more" : "") + ")";
}

// Everything checked once the spec and the task section have read cleanly.
void check_experiment(YAML::Node root, LoadedExperiment& exp, int world_size, Problems& problems) {
  const ExperimentSpec& spec = exp.spec;
  const std::string parallel = parallel_problem(spec.parallel, world_size);
  if (!parallel.empty()) problems.push_back(parallel);
  if (exp.task->needs_model())
    collect(problems, [&] { check_model_task(root, exp, problems); });
  else
    check_producer_task(root, exp, problems);
  for (auto& p : exp.task->problems(spec, exp.model_config)) problems.push_back(p);
  if (spec.dump.enabled() && !exp.task->needs_model())
    problems.push_back("dump: task " + exp.task->name() + " runs no model to observe (remove the dump section)");
  else
    for (auto& p : dump_problems(spec.dump, exp.model_config, spec.parallel.data_parallel)) problems.push_back(p);
}

}  // namespace

LoadedExperiment load_experiment(const std::string& file, const std::vector<std::string>& overrides, int world_size) {
  LoadedExperiment exp;
  exp.source.file = file;
  YAML::Node root = load_yaml_file(file);
  if (!root.IsMap()) fail(file, ": expected a YAML map of sections (name, model, attention, data, task, output)");
  for (const auto& o : overrides) apply_override(root, o, exp.source);

  // The sections and the task are read independently, so the problems of both are reported; the
  // checks against the model need a spec that read cleanly.
  Problems problems;
  bool spec_read = false;
  collect(problems, [&] {
    read_spec(root, exp.spec, exp.source);
    spec_read = true;
  });
  collect(problems, [&] { exp.task = configure_task(root["task"], exp.source); });
  if (spec_read && !exp.task) {
    for (auto& p : attention_spec_problems(exp.spec.attention)) problems.push_back(p);
    const std::string parallel = parallel_problem(exp.spec.parallel, world_size);
    if (!parallel.empty()) problems.push_back(parallel);
  }
  if (spec_read && exp.task) check_experiment(root, exp, world_size, problems);
  if (!problems.empty()) {
    std::string msg = file + ": the experiment cannot run:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(msg);
  }

  exp.resolved = write_spec(exp.spec);
  exp.resolved["task"] = exp.task->resolved();
  if (!exp.task->reads_data()) exp.resolved.remove("data");
  return exp;
}

}  // namespace lminf
