// Task `pretrain`: trains a Llama-architecture model from scratch with libtorch autograd (AdamW,
// linear warmup then cosine decay, gradient clipping, optional bfloat16 autocast), data-parallel
// over the world communicator (gradients all-reduced), with periodic checkpoints and exact resume.
// Output: output.dir/model, a Hugging Face model folder every other task loads.
//
// Training examples are [BOS] + a window of context-1 tokens of one document (one BOS per document,
// so attention sinks form at position 0), drawn by a generator seeded with (seed, step, rank), so a
// resumed run sees exactly the batches an uninterrupted one would.
#pragma once

#include "experiments/tasks/task_base.h"

namespace lminf {

struct TrainModelShape {
  int64_t vocab_size = 0;
  int64_t hidden_size = 128;
  int64_t intermediate_size = 384;
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_head_kv = 4;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = true;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  template <class V>
  void visit(V& v) {
    v("vocab_size", vocab_size, "vocabulary size (the tokenizer's)", Required{}, Min{4});
    v("hidden_size", hidden_size, "model width", Min{8});
    v("intermediate_size", intermediate_size, "SwiGLU inner width", Min{1});
    v("num_hidden_layers", n_layer, "layers", Min{1});
    v("num_attention_heads", n_head, "query heads", Min{1});
    v("num_key_value_heads", n_head_kv, "key/value heads (GQA when fewer than query heads)", Min{1});
    v("rope_theta", rope_theta, "RoPE base", Min{2});
    v("tie_word_embeddings", tie_word_embeddings, "share the embedding with the output head");
    v("bos_token_id", bos_token_id, "BOS id, prepended to every training window", Min{0});
    v("eos_token_id", eos_token_id, "EOS id recorded in config.json", Min{0});
  }
};

struct PretrainSpec {
  static constexpr const char* kType = "pretrain";  // task.type
  TrainModelShape model;
  int64_t context = 128;
  int64_t batch_size = 32;
  int64_t steps = 1000;
  double lr = 3e-3;
  double min_lr = 3e-4;
  int64_t warmup = 100;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double grad_clip = 1.0;
  std::string precision = "float32";
  int64_t log_every = 50;
  int64_t eval_every = 250;
  std::string eval_path;
  int64_t eval_sequences = 16;
  int64_t checkpoint_every = 500;
  bool resume = true;
  template <class V>
  void visit(V& v) {
    v("model", model, "shape of the model to train (written to config.json)");
    v("context", context, "training sequence length in tokens, BOS included", Min{2});
    v("batch_size", batch_size, "sequences per optimizer step, summed over data-parallel ranks", Min{1});
    v("steps", steps, "optimizer steps", Min{1});
    v("lr", lr, "peak learning rate (after warmup)", Min{0});
    v("min_lr", min_lr, "learning rate at the end of the cosine decay", Min{0});
    v("warmup", warmup, "steps of linear warmup from 0 to lr", Min{0});
    v("weight_decay", weight_decay, "AdamW decoupled weight decay on matrices (norm weights are not decayed)", Min{0});
    v("beta1", beta1, "AdamW beta1", Min{0}, Max{1});
    v("beta2", beta2, "AdamW beta2", Min{0}, Max{1});
    v("grad_clip", grad_clip, "clip the global gradient norm to this (0: off)", Min{0});
    v("precision", precision, "float32, or bfloat16_autocast (matmuls in bfloat16, weights and optimizer in float32)",
      Choices{"float32", "bfloat16_autocast"});
    v("log_every", log_every, "steps between progress lines", Min{1});
    v("eval_every", eval_every, "steps between held-out evaluations (0: only at the end)", Min{0});
    v("eval_path", eval_path, "held-out token-id file (one document per line); empty: no evaluation");
    v("eval_sequences", eval_sequences, "held-out documents evaluated (their first `context` tokens)", Min{1});
    v("checkpoint_every", checkpoint_every, "steps between checkpoints in output.dir/checkpoints (0: none)", Min{0});
    v("resume", resume, "continue from the newest checkpoint in output.dir/checkpoints if there is one");
  }
};

// The learning rate at `step` (0-based): linear warmup to lr, then cosine decay to min_lr at `steps`.
double pretrain_lr(const PretrainSpec& s, int64_t step);

class PretrainTask final : public SpecTask<PretrainSpec> {
 public:
  std::vector<std::string> problems(const ExperimentSpec& spec, const ModelConfig& model) const override;
  std::vector<std::string> outputs() const override { return {"results.json", "model"}; }
  bool needs_model() const override { return false; }
  void run(RunContext& ctx) override;
  void run_producer(ProducerContext& ctx) override;
};

}  // namespace lminf
