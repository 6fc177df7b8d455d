// The experiment spec: what `lminf run EXPERIMENT.yaml` reads. Every key is documented in
// docs/yaml.md and by `lminf keys`. The task section is validated by the task named in task.type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <yaml-cpp/yaml.h>

#include "attention/attention_spec.h"
#include "analysis/factors/dump_spec.h"
#include "framework/config/spec.h"

namespace lminf {

struct ModelSpec {
  std::string path;
  std::string dtype = "float32";
  std::string device = "cpu";
  YAML::Node rope_scaling;           // null: as config.json
  std::optional<double> rope_theta;  // null: as config.json
  template <class V>
  void visit(V& v) {
    v("path", path, "Hugging Face model folder (config.json + model.safetensors or sharded index); required by every task that reads a model");
    v("dtype", dtype, "run dtype: weights are converted to it on load", Choices{"float32", "bfloat16"});
    v("device", device,
      "where the model runs: cpu, cuda (each rank takes GPU local_rank mod the GPUs it sees) or cuda:N; "
      "cuda needs lminf built against a CUDA-enabled libtorch (docs/parallel.md)");
    v("rope_scaling", rope_scaling,
      "overrides config.json's rope_scaling (RoPE-scaling baselines, with HF's formulas): a map as in HF, "
      "{rope_type: linear|dynamic|yarn|llama3|default, factor, original_max_position_embeddings, low_freq_factor, "
      "high_freq_factor, beta_fast, beta_slow, attention_factor, mscale, mscale_all_dim}; {rope_type: default} "
      "removes it; null: as config.json");
    v("rope_theta", rope_theta, "overrides config.json's rope_theta (the RoPE base); null: as config.json");
  }
};

struct DataSpec {
  std::string format = "ids";
  std::string path;
  bool prepend_bos = true;
  int64_t max_sequences = 0;
  std::string text_field = "text";
  YAML::Node filter;  // null or a map: dotted field path -> required value
  std::string tokenizer;
  std::string truncation = "right";
  template <class V>
  void visit(V& v) {
    v("format", format,
      "ids: one sequence per line, space-separated token ids; text: one document per file; jsonl / jsonl.zst: "
      "one JSON record per line (zstd-compressed), tokenized with the model's tokenizer",
      Choices{"ids", "text", "jsonl", "jsonl.zst"});
    v("path", path, "data file, folder or glob (relative paths are relative to the working directory); required by "
      "every task that reads data");
    v("prepend_bos", prepend_bos, "prepend the model's bos_token_id to every sequence");
    v("max_sequences", max_sequences, "read at most this many sequences (0: all)", Min{0});
    v("text_field", text_field, "jsonl formats: dotted path of the field that holds the text");
    v("filter", filter, "jsonl formats: keep records whose fields equal these values, e.g. {meta.pile_set_name: ArXiv}");
    v("tokenizer", tokenizer, "text formats: tokenizer folder or file (default: model.path)");
    v("truncation", truncation, "which tokens a sequence longer than task.max_length keeps: right keeps the first, "
      "left the last, center the first and last halves", Choices{"right", "left", "center"});
  }
};

struct ParallelSpec {
  int64_t tensor_parallel = 1;
  int64_t data_parallel = 1;
  std::string communicator = "auto";
  template <class V>
  void visit(V& v) {
    v("tensor_parallel", tensor_parallel, "ranks that split each layer (heads, MLP, vocabulary)", Min{1});
    v("data_parallel", data_parallel, "groups that take disjoint sequences; tp x dp = mpirun -np", Min{1});
    v("communicator", communicator,
      "a GPU model's tensor-parallel collectives: auto (NCCL when every rank has its own GPU, else mpi), mpi "
      "(through host memory; ranks may share a GPU), nccl",
      Choices{"auto", "mpi", "nccl"});
  }
};

struct OutputSpec {
  std::string dir;
  bool overwrite = false;
  template <class V>
  void visit(V& v) {
    v("dir", dir, "output folder (created if missing)", Required{});
    v("overwrite", overwrite, "replace the results of an earlier run in output.dir");
  }
};

struct ExperimentSpec {
  std::string name;
  int64_t seed = 0;
  int64_t threads = 0;
  ModelSpec model;
  AttentionSpec attention;
  DataSpec data;
  ParallelSpec parallel;
  OutputSpec output;
  YAML::Node task;  // validated by the task chosen by task.type
  YAML::Node sweep;  // optional: points of overrides, each run into its own folder (experiments/run/sweep.h)
  DumpSpec dump;    // optional factor dumps of any task

  template <class V>
  void visit(V& v) {
    v("name", name, "experiment name (recorded in the outputs)", Required{});
    v("seed", seed, "seed for everything random in the run");
    v("threads", threads, "CPU threads per rank for libtorch (0: libtorch's default)", Min{0});
    v("model", model, "the checkpoint");
    v("attention", attention, "the attention variant and its parameters");
    v("data", data, "where the token sequences come from");
    v("parallel", parallel, "tensor and data parallelism (under mpirun)");
    v("output", output, "where results go");
    v("task", task, "what to compute; keys depend on task.type (see `lminf keys`)", Required{});
    v("sweep", sweep, "optional grid/points of overrides; each point runs into output.dir/<point> (docs/yaml.md)");
    v("dump", dump, "optional: attention logits, entropy and positional features of the run, to HDF5 (docs/hdf5.md)");
  }
};

}  // namespace lminf
