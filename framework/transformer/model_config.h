// The family-neutral model config: the shapes and options every family maps its own config.json keys
// onto (the families, their keys and their checks live in models/: models/model_config_json.h reads
// and writes config.json, models/model_families.h validates), and HF `rope_scaling`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lminf {

// Upper bounds on config.json sizes, far above any released model (Llama 3.1 405B: hidden 16384,
// intermediate 53248, 126 layers, 128 heads, vocabulary 128256), so that a mistyped or hostile value is
// refused naming its key before anything is allocated, and products of sizes cannot overflow int64.
inline constexpr int64_t kMaxHiddenSize = int64_t{1} << 17;        // hidden_size, head_dim
inline constexpr int64_t kMaxIntermediateSize = int64_t{1} << 20;  // intermediate_size
inline constexpr int64_t kMaxLayers = 4096;                        // num_hidden_layers
inline constexpr int64_t kMaxHeads = 4096;                         // num_attention_heads, num_key_value_heads
inline constexpr int64_t kMaxVocab = int64_t{1} << 24;             // vocab_size (16,777,216 ids)
inline constexpr int64_t kMaxPositions = int64_t{1} << 26;         // max_position_embeddings, sliding_window

// HF `rope_scaling` (key `rope_type`, legacy `type`). type "default" means none.
struct RopeScaling {
  std::string type = "default";  // default | linear | dynamic | yarn | llama3
  double factor = 1.0;
  std::optional<int64_t> original_max_position_embeddings;
  // llama3
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  // yarn
  std::optional<double> attention_factor;
  std::optional<double> beta_fast;
  std::optional<double> beta_slow;
  std::optional<double> mscale;
  std::optional<double> mscale_all_dim;
  bool truncate = true;

  bool operator==(const RopeScaling& o) const;
  nlohmann::json to_json() const;  // null for "default"
  // Parses an HF rope_scaling object; `where` names the source for errors ("DIR/config.json").
  static RopeScaling from_json(const nlohmann::json& j, const std::string& where);
};

struct ModelConfig {
  std::string model_type;  // a model_type of one family of models/model_families.cpp
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t n_layer = 0;      // num_hidden_layers
  int64_t n_head = 0;       // num_attention_heads
  int64_t n_head_kv = 0;    // num_key_value_heads (defaults to n_head)
  int64_t head_dim = 0;     // head_dim (defaults to hidden_size / n_head)
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::string hidden_act = "silu";
  std::optional<int64_t> sliding_window;  // Mistral
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  std::string torch_dtype;

  // Architecture options a family sets (the defaults are Llama's); named by what they change, so the
  // code that reads them (rope.h, alibi.h, the attention variants) need not know family names.
  int64_t rotary_dim = 0;          // GPT-J rotary_dim: rotated features per head; 0 = head_dim
  bool rope_interleaved = false;   // GPT-J: rotate_every_two (interleaved pairs) instead of rotate-half
  bool alibi = false;              // MPT attn_config.alibi: ALiBi biases instead of rotary embeddings
  double alibi_bias_max = 8.0;     // MPT attn_config.alibi_bias_max
  std::optional<double> clip_qkv;  // MPT attn_config.clip_qkv: clamp the fused qkv to [-c, c]
  bool no_bias = true;             // MPT no_bias: no biases in the linears and LayerNorms
  bool lm_head_bias = false;       // GPT-J: lm_head.bias
  double layer_norm_eps = 1e-5;    // MPT, GPT-J layer_norm_epsilon (LayerNorm families)

  std::filesystem::path source;  // the config.json it came from ("" when built in code)

  // The family-neutral checks (every size in [1, its kMax* bound], kv heads dividing the query heads,
  // special token ids inside the vocabulary, finite rope_theta / norm epsilons); throws naming `where`
  // and the config.json key. The family's own checks: validate_model_config (models/).
  void check_sizes(const std::string& where) const;
  // Throws unless the rotated features per head are even and fit the head; `key` is the family's
  // config.json name for them (head_dim, rotary_dim).
  void check_rotary_dims(const std::string& where, const std::string& key) const;

  int64_t group_size() const { return n_head / n_head_kv; }  // query heads per key/value head
  int64_t rotary_dims() const { return rotary_dim > 0 ? rotary_dim : head_dim; }
};

}  // namespace lminf
