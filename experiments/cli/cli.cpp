#include "experiments/cli/cli.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <iterator>
#include <random>
#include <sstream>

#include "analysis/report/analyze.h"
#include "analysis/report/html/report.h"
#include "attention/registry.h"
#include "experiments/run/run_experiment.h"
#include "framework/io/atomic_file.h"
#include "framework/core/error.h"
#include "framework/core/logging.h"
#include "framework/text/sentencepiece_tokenizer.h"
#include "experiments/data/text_data.h"
#include "framework/text/tokenizer.h"
#include "framework/core/utf8.h"
#include "framework/core/version.h"
#include "models/generate.h"
#include "models/model_config_json.h"
#include "models/random_checkpoint.h"
#include "parallel/communicator.h"
#include "parallel/mpi_communicator.h"

namespace lminf {

// lminf random-ids writes at most this many ids (a few GB of text).
constexpr int64_t kMaxRandomIds = int64_t{1} << 30;
namespace {

// Minimal flag parser: positional arguments plus --flag value / --flag=value / boolean --flag.
struct Args {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> flags;

  Args(const std::vector<std::string>& argv, const std::vector<std::string>& boolean_flags) {
    for (size_t i = 0; i < argv.size(); ++i) {
      const std::string& a = argv[i];
      if (a.rfind("--", 0) == 0) {
        auto eq = a.find('=');
        if (eq != std::string::npos) {
          flags.emplace_back(a.substr(2, eq - 2), a.substr(eq + 1));
        } else if (std::find(boolean_flags.begin(), boolean_flags.end(), a.substr(2)) != boolean_flags.end()) {
          flags.emplace_back(a.substr(2), "true");
        } else {
          if (i + 1 >= argv.size()) fail("option ", a, " needs a value");
          flags.emplace_back(a.substr(2), argv[++i]);
        }
      } else {
        positional.push_back(a);
      }
    }
  }
  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> v;
    for (const auto& [k, val] : flags)
      if (k == name) v.push_back(val);
    return v;
  }
  std::string get(const std::string& name, const std::string& fallback) const {
    auto v = all(name);
    return v.empty() ? fallback : v.back();
  }
  // --name as an integer in [lo, hi] (the bounds keep a junk value from running, or allocating, forever).
  int64_t get_int(const std::string& name, int64_t fallback, int64_t lo = std::numeric_limits<int64_t>::min(),
                  int64_t hi = std::numeric_limits<int64_t>::max()) const {
    auto v = all(name);
    if (v.empty()) return fallback;
    int64_t x = 0;
    try {
      size_t used = 0;
      x = std::stoll(v.back(), &used);
      if (used != v.back().size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
      fail("--", name, " expects an integer, got \"", v.back(), "\"");
    }
    if (x < lo || x > hi) fail("--", name, " must be in [", lo, ", ", hi, "], got ", x);
    return x;
  }
  // --name as a finite number in [lo, hi].
  double get_double(const std::string& name, double fallback, double lo = -std::numeric_limits<double>::max(),
                    double hi = std::numeric_limits<double>::max()) const {
    auto v = all(name);
    if (v.empty()) return fallback;
    double x = 0;
    try {
      size_t used = 0;
      x = std::stod(v.back(), &used);
      if (used != v.back().size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
      fail("--", name, " expects a number, got \"", v.back(), "\"");
    }
    if (!std::isfinite(x) || x < lo || x > hi) fail("--", name, " must be a finite number in [", lo, ", ", hi, "], got ", v.back());
    return x;
  }
  bool has(const std::string& name) const { return !all(name).empty(); }
  void allow(const std::vector<std::string>& known, const std::string& command) const {
    for (const auto& [k, v] : flags) {
      if (std::find(known.begin(), known.end(), k) == known.end())
        fail("lminf ", command, ": unknown option --", k, " (see lminf help)");
    }
  }
};

std::vector<int64_t> parse_ids(const std::string& text, const std::string& what) {
  std::vector<int64_t> ids;
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    try {
      size_t used = 0;
      int64_t v = std::stoll(tok, &used);
      if (used != tok.size() || v < 0) throw std::invalid_argument("");
      ids.push_back(v);
    } catch (const std::exception&) {
      fail(what, ": \"", tok, "\" is not a token id");
    }
  }
  return ids;
}

int cmd_run(const Args& a, MpiRuntime& mpi) {
  a.allow({"set", "dry-run"}, "run");
  if (a.positional.size() != 2) fail("usage: lminf run EXPERIMENT.yaml [--set key.path=value ...] [--dry-run]");
  // Every rank of `mpirun -np N lminf run ...` runs this; the world size comes from MPI.
  std::unique_ptr<Communicator> world = mpi.world();
  LogSettings ls = log_settings();
  ls.rank = world->rank();
  ls.world = world->size();
  set_log_settings(ls);
  run_file(a.positional[1], a.all("set"), *world, a.has("dry-run"));
  return 0;
}

int cmd_keys(const Args& a) {
  std::cout << "# Experiment keys (lminf run EXPERIMENT.yaml); see docs/yaml.md\n";
  std::cout << describe_spec<ExperimentSpec>();
  for (const auto& t : task_registry()) {
    std::cout << "\n# task.type: " << t.name << " -- " << t.summary << "\n" << t.describe_keys();
  }
  return 0;
}

int cmd_variants(const Args&) {
  for (const auto& v : attention_variants()) {
    std::cout << v.name << "\t" << v.summary << "\n";
    std::string keys;
    for (const auto& k : attention_variant_keys(v)) keys += (keys.empty() ? "attention." : ", attention.") + k;
    if (!keys.empty()) std::cout << "\tparameters: " << keys << "\n";
  }
  return 0;
}

int cmd_tasks(const Args&) {
  for (const auto& t : task_registry()) std::cout << t.name << "\t" << t.summary << "\n";
  return 0;
}

int cmd_random_model(const Args& a) {
  a.allow({"seed", "shards", "storage", "family"}, "random-model");
  if (a.positional.size() != 3) {
    std::string families;
    for (const std::string& f : family_names()) families += (families.empty() ? "" : "|") + f;
    fail("usage: lminf random-model PRESET DIR [--family ", families,
         "] [--seed N] [--shards N] [--storage float32|bfloat16]");
  }
  const std::string family = a.get("family", family_names().front());
  ModelConfig c = family_preset(a.positional[1], family);
  const std::string storage = a.get("storage", "float32");
  at::ScalarType st = storage == "bfloat16" ? at::kBFloat16 : storage == "float32" ? at::kFloat : at::kHalf;
  if (storage != "bfloat16" && storage != "float32" && storage != "float16")
    fail("--storage: \"", storage, "\" (use float32, bfloat16 or float16)");
  write_random_model(a.positional[2], c, static_cast<uint64_t>(a.get_int("seed", 0)),
                     static_cast<int>(a.get_int("shards", 1, 1, 10000)), st);
  std::cerr << "wrote a random " << a.positional[1] << " " << family << " (" << parameter_count(c) << " parameters) to "
            << a.positional[2] << "\n";
  return 0;
}

int cmd_random_ids(const Args& a) {
  a.allow({"vocab", "sequences", "length", "min-length", "seed", "first-id"}, "random-ids");
  if (a.positional.size() != 2)
    fail("usage: lminf random-ids FILE --vocab V [--sequences N] [--length L] [--min-length M] [--seed S] [--first-id F]");
  const int64_t vocab = a.get_int("vocab", 0, 0, kMaxVocab);
  if (vocab <= 0) fail("lminf random-ids: --vocab V (> 0) is required");
  const int64_t n = a.get_int("sequences", 8, 0, kMaxRandomIds), len = a.get_int("length", 256, 1, kMaxRandomIds);
  const int64_t min_len = a.get_int("min-length", len, 1, len);
  const int64_t first = a.get_int("first-id", 3, 0, vocab - 1);  // skip special ids by default (BOS=1, EOS=2)
  if (static_cast<double>(n) * static_cast<double>(len) > static_cast<double>(kMaxRandomIds))
    fail("lminf random-ids: --sequences x --length (", n, " x ", len, ") must be at most ", kMaxRandomIds, " ids");
  if (first >= vocab) fail("--first-id must be < --vocab");
  std::mt19937_64 rng(static_cast<uint64_t>(a.get_int("seed", 0)));
  std::ostringstream out;
  for (int64_t s = 0; s < n; ++s) {
    const int64_t l = min_len + static_cast<int64_t>(rng() % static_cast<uint64_t>(std::max<int64_t>(1, len - min_len + 1)));
    for (int64_t i = 0; i < l; ++i)
      out << (i ? " " : "") << first + static_cast<int64_t>(rng() % static_cast<uint64_t>(vocab - first));
    out << "\n";
  }
  write_file_atomic(a.positional[1], out.str());
  return 0;
}

int cmd_generate(const Args& a) {
  a.allow({"prompt", "max-new-tokens", "sample", "temperature", "top-k", "top-p", "seed", "dtype", "stop-at-eos"},
          "generate");
  if (a.positional.size() != 2)
    fail("usage: lminf generate MODEL_DIR [--prompt \"1 450 ...\"] [--max-new-tokens N] [--sample] [--temperature T] "
         "[--top-k K] [--top-p P] [--seed S] [--dtype float32|bfloat16] [--stop-at-eos]");
  ModelConfig c = load_model_config(a.positional[1]);
  LoadOptions lo;
  lo.dtype = parse_dtype(a.get("dtype", "float32"), "--dtype");
  auto model = load_model(a.positional[1], c, lo);
  auto attn = make_attention(AttentionSpec{});
  std::vector<int64_t> prompt = parse_ids(a.get("prompt", ""), "--prompt");
  if (prompt.empty()) {
    if (c.bos_token_id < 0) fail("--prompt is required: the model has no bos_token_id to start from");
    prompt = {c.bos_token_id};
  }
  for (int64_t id : prompt)
    if (id >= c.vocab_size) fail("--prompt: token id ", id, " is outside the vocabulary (", c.vocab_size, ")");
  GenerateOptions g;
  g.max_new_tokens = a.get_int("max-new-tokens", 64, 0, std::max<int64_t>(0, kMaxPositions - static_cast<int64_t>(prompt.size())));
  g.do_sample = a.has("sample");
  g.temperature = a.get_double("temperature", 1.0, 1e-6, 1e6);
  g.top_k = a.get_int("top-k", 0, 0, c.vocab_size);
  g.top_p = a.get_double("top-p", 1.0, 1e-9, 1.0);
  g.seed = static_cast<uint64_t>(a.get_int("seed", 0));
  if (a.has("stop-at-eos")) g.stop_tokens = c.eos_token_ids;
  auto out = generate(*model, *attn, prompt, g);
  for (size_t i = 0; i < out.size(); ++i) std::cout << (i ? " " : "") << out[i];
  std::cout << "\n";
  return 0;
}

bool parse_bool_flag(const Args& a, const std::string& name, bool fallback) {
  const std::string v = a.get(name, fallback ? "true" : "false");
  if (v == "true") return true;
  if (v == "false") return false;
  fail("--", name, " expects true or false, got \"", v, "\"");
}

int cmd_tokenize(const Args& a) {
  a.allow({"no-special-tokens", "decode"}, "tokenize");
  if (a.positional.size() != 2)
    fail("usage: lminf tokenize DIR [--no-special-tokens] [--decode]  (text on stdin -> ids on stdout)");
  const std::filesystem::path dir = a.positional[1];
  auto tok = load_tokenizer(dir);
  if (std::filesystem::is_directory(dir) && std::filesystem::exists(dir / "config.json"))
    check_tokenizer_fits(*tok, load_model_config(dir), dir.string());
  const std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (a.has("decode")) {
    std::cout << tok->decode(parse_ids(input, "stdin"), a.has("no-special-tokens"));
  } else {
    check_utf8(input, "stdin");
    const auto ids = tok->encode(input, !a.has("no-special-tokens"));
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  std::cout.flush();
  return 0;
}

int cmd_train_tokenizer(const Args& a) {
  a.allow({"vocab-size", "model-type", "byte-fallback", "character-coverage", "normalization", "split-digits",
           "input-sentence-size", "max-sentence-length", "threads", "spm"},
          "train-tokenizer");
  if (a.positional.size() < 3)
    fail("usage: lminf train-tokenizer OUT_DIR INPUT... [--vocab-size N] [--model-type bpe|unigram] "
         "[--byte-fallback true|false] [--character-coverage X] [--normalization identity|nmt_nfkc|...] "
         "[--split-digits true|false] [--input-sentence-size N] [--max-sentence-length N] [--threads N] "
         "[--spm key=value ...]");
  SpmTrainOptions o;
  o.output_dir = a.positional[1];
  for (size_t i = 2; i < a.positional.size(); ++i)
    for (auto& f : expand_data_path(a.positional[i], "text", "train-tokenizer input")) o.inputs.push_back(f);
  o.vocab_size = a.get_int("vocab-size", o.vocab_size, 1, kMaxVocab);
  o.model_type = a.get("model-type", o.model_type);
  o.byte_fallback = parse_bool_flag(a, "byte-fallback", o.byte_fallback);
  o.character_coverage = a.get_double("character-coverage", o.character_coverage, 1e-6, 1.0);
  o.normalization = a.get("normalization", o.normalization);
  o.split_digits = parse_bool_flag(a, "split-digits", o.split_digits);
  o.input_sentence_size = a.get_int("input-sentence-size", o.input_sentence_size, 0, int64_t{1} << 40);
  o.max_sentence_length = a.get_int("max-sentence-length", o.max_sentence_length, 1, int64_t{1} << 31);
  o.num_threads = a.get_int("threads", o.num_threads, 1, 4096);
  o.extra = a.all("spm");
  train_sentencepiece(o);
  auto tok = load_tokenizer(o.output_dir);
  std::cerr << "wrote " << (o.output_dir / "tokenizer.model").string() << " (" << tok->vocab_size() << " pieces, "
            << o.model_type << ", from " << o.inputs.size() << " files) and tokenizer_config.json\n";
  return 0;
}

int cmd_analyze(const Args& a) {
  a.allow({"out", "label", "ema", "first-tokens", "head", "bin", "no-plots", "overwrite"}, "analyze");
  if (a.positional.size() < 2)
    fail("usage: lminf analyze FILE.h5 [FILE.h5 ...] --out DIR [--label NAME ...] [--ema GAMMA] [--first-tokens N] "
         "[--head H] [--bin B] [--no-plots] [--overwrite]");
  AnalyzeOptions o;
  for (size_t i = 1; i < a.positional.size(); ++i) o.inputs.push_back(a.positional[i]);
  o.labels = a.all("label");
  o.out_dir = a.get("out", "");
  o.ema_gamma = a.get_double("ema", o.ema_gamma, 0.0, 1.0);
  o.first_tokens = a.get_int("first-tokens", o.first_tokens, 0, kMaxPositions);
  if (a.has("head")) o.head = a.get_int("head", 0, 0, kMaxHeads - 1);
  o.position_bin = a.get_int("bin", 0, 0, kMaxPositions);
  o.plots = !a.has("no-plots");
  o.overwrite = a.has("overwrite");
  const nlohmann::json s = analyze(o);
  for (const auto& f : s["tables"]) std::cout << (o.out_dir / f.get<std::string>()).string() << "\n";
  for (const auto& f : s["plots"]) std::cout << (o.out_dir / f.get<std::string>()).string() << "\n";
  if (s.contains("plots_skipped")) std::cerr << "plots skipped: " << s["plots_skipped"].get<std::string>() << "\n";
  std::cout << (o.out_dir / "summary.json").string() << "\n";
  return 0;
}

int cmd_report(const Args& a) {
  a.allow({"no-analyze"}, "report");
  if (a.positional.size() != 2) fail("usage: lminf report DIR [--no-analyze]  (DIR: the output.dir of a run or a sweep)");
  ReportOptions o;
  o.dir = a.positional[1];
  o.analyze = !a.has("no-analyze");
  std::cout << write_report(o).string() << "\n";
  return 0;
}

}  // namespace

std::string cli_usage() {
  return "lminf " + std::string(version()) + " (" + git_revision() + ") -- long-context behaviour of LLMs\n"
         "\n"
         "usage:\n"
         "  lminf run EXPERIMENT.yaml [--set key.path=value ...] [--dry-run]\n"
         "                                   run an experiment (docs/yaml.md); --dry-run prints the resolved spec;\n"
         "                                   mpirun -np N lminf run ... for parallel.tensor_parallel x data_parallel = N\n"
         "  lminf keys                       every YAML key with its type, default and meaning\n"
         "  lminf variants                   the attention variants\n"
         "  lminf tasks                      the tasks\n"
         "  lminf generate MODEL_DIR [--prompt IDS] [--max-new-tokens N] [--sample --temperature T --top-k K\n"
         "                 --top-p P --seed S] [--dtype float32|bfloat16] [--stop-at-eos]\n"
         "  lminf random-model PRESET DIR [--family llama|mpt|gptj] [--seed N] [--shards N] [--storage float32|bfloat16|float16]\n"
         "                                   write a random checkpoint (presets: tiny, llama-110m; sizes of the preset\n"
         "                                   in the chosen family)\n"
         "  lminf random-ids FILE --vocab V [--sequences N] [--length L] [--min-length M] [--seed S]\n"
         "  lminf tokenize DIR [--no-special-tokens] [--decode]\n"
         "                                   text on stdin -> token ids on stdout (ids -> text with --decode);\n"
         "                                   DIR: a model or tokenizer folder (docs/tokenizers.md)\n"
         "  lminf train-tokenizer OUT_DIR INPUT... [--vocab-size N] [--model-type bpe|unigram]\n"
         "                 [--byte-fallback true|false] [--character-coverage X] [--normalization NAME] [--spm key=value]\n"
         "                                   train a SentencePiece tokenizer.model on text files, folders or globs\n"
         "  lminf analyze FILE.h5 [FILE.h5 ...] --out DIR [--label NAME ...] [--ema GAMMA] [--first-tokens N]\n"
         "                [--head H] [--bin B] [--no-plots] [--overwrite]\n"
         "                                   factor analyses of dumps / perplexity outputs (docs/analysis.md)\n"
         "  lminf report DIR [--no-analyze]  one self-contained DIR/report.html for a run or a sweep folder: results,\n"
         "                                   figures, factor summaries, provenance, config (docs/analysis.md)\n"
         "  lminf version\n"
         "\n"
         "global options: --log-level debug|info|warn|error\n";
}

int cli_main(const std::vector<std::string>& argv, MpiRuntime& mpi) {
  std::vector<std::string> args;
  LogSettings ls = log_settings();
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--log-level" && i + 1 < argv.size()) {
      const std::string& l = argv[++i];
      if (l == "debug") ls.level = LogLevel::kDebug;
      else if (l == "info") ls.level = LogLevel::kInfo;
      else if (l == "warn") ls.level = LogLevel::kWarn;
      else if (l == "error") ls.level = LogLevel::kError;
      else fail("--log-level: \"", l, "\" (use debug, info, warn or error)");
    } else {
      args.push_back(argv[i]);
    }
  }
  set_log_settings(ls);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << cli_usage();
    return args.empty() ? 2 : 0;
  }
  const std::string& cmd = args[0];
  const Args a(args, {"dry-run", "sample", "stop-at-eos", "no-special-tokens", "decode", "no-plots", "overwrite", "no-analyze"});
  if (cmd == "run") return cmd_run(a, mpi);
  if (cmd == "keys") return cmd_keys(a);
  if (cmd == "variants") return cmd_variants(a);
  if (cmd == "tasks") return cmd_tasks(a);
  if (cmd == "generate") return cmd_generate(a);
  if (cmd == "random-model") return cmd_random_model(a);
  if (cmd == "random-ids") return cmd_random_ids(a);
  if (cmd == "tokenize") return cmd_tokenize(a);
  if (cmd == "train-tokenizer") return cmd_train_tokenizer(a);
  if (cmd == "analyze") return cmd_analyze(a);
  if (cmd == "report") return cmd_report(a);
  if (cmd == "version" || cmd == "--version") {
    std::cout << "lminf " << version() << " (" << git_revision() << ")\n";
    return 0;
  }
  fail("unknown command \"", cmd, "\" (run lminf help)");
}

}  // namespace lminf
