#include "experiments/tasks/generation_common.h"

#include <algorithm>
#include <cstring>

#include "experiments/outputs/record_journal.h"
#include "framework/core/error.h"
#include "framework/transformer/model_config.h"
#include "models/generate.h"

namespace lminf {

std::unique_ptr<Tokenizer> run_tokenizer(const ExperimentSpec& spec, const ModelConfig& model) {
  if (!spec.data.tokenizer.empty()) return load_tokenizer(spec.data.tokenizer);
  return load_tokenizer(model.source.empty() ? std::filesystem::path(spec.model.path) : model.source.parent_path());
}

std::string run_tokenizer_problem(const ExperimentSpec& spec, const ModelConfig& model) {
  const std::string key = spec.data.tokenizer.empty() ? "model.path" : "data.tokenizer";
  try {
    auto tok = run_tokenizer(spec, model);
    check_tokenizer_fits(*tok, model, key);
  } catch (const Error& e) {
    return key + ": this task decodes generated text and needs a tokenizer: " + e.what();
  }
  return "";
}

std::string cut_at_stop(std::string& text, const std::vector<std::string>& stop_strings) {
  size_t best = std::string::npos;
  std::string which;
  for (const auto& s : stop_strings) {
    if (s.empty()) continue;
    const size_t at = text.find(s);
    if (at == std::string::npos) continue;
    if (best == std::string::npos || at < best || (at == best && s.size() > which.size())) {
      best = at;
      which = s;
    }
  }
  if (best != std::string::npos) text.resize(best);
  return which;
}

std::vector<std::string> generation_task_problems(const ExperimentSpec& spec, const ModelConfig& model,
                                                  const YAML::Node& task_resolved, const std::string& stem) {
  std::vector<std::string> p;
  for (const std::string& problem : {run_tokenizer_problem(spec, model),
                                     record_journal_problem(spec, task_resolved, {"flush_every"}, stem)})
    if (!problem.empty()) p.push_back(problem);
  return p;
}

TextGeneration generate_text(CausalLM& model, const AttentionVariant& attention, const Tokenizer& tokenizer,
                             const std::vector<int64_t>& prompt, const TextGenerationOptions& opts) {
  GenerateOptions g;
  g.max_new_tokens = opts.max_new_tokens;
  g.do_sample = false;
  if (opts.eos_id >= 0) g.stop_tokens.push_back(opts.eos_id);
  if (!opts.stop_strings.empty()) {
    g.stop_when = [&](const std::vector<int64_t>& generated) {
      std::string text = tokenizer.decode(generated, true);
      return !cut_at_stop(text, opts.stop_strings).empty();
    };
  }
  return text_generation_of(tokenizer, generate(model, attention, prompt, g), opts);
}

TextGeneration text_generation_of(const Tokenizer& tokenizer, std::vector<int64_t> tokens,
                                  const TextGenerationOptions& opts) {
  TextGeneration r;
  r.tokens = std::move(tokens);
  r.eos = opts.eos_id >= 0 && !r.tokens.empty() && r.tokens.back() == opts.eos_id;
  r.text = tokenizer.decode(r.tokens, true);
  r.stop = cut_at_stop(r.text, opts.stop_strings);
  return r;
}

std::string first_integer(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && !(text[i] >= '0' && text[i] <= '9')) ++i;
  size_t j = i;
  while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
  return text.substr(i, j - i);
}

namespace {

// Walks a template, calling literal(text) and field(name) in order.
template <class L, class F>
void walk_template(const std::string& tmpl, const std::string& where, L literal, F field) {
  std::string lit;
  size_t i = 0;
  while (i < tmpl.size()) {
    const char c = tmpl[i];
    if (c == '{' && i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      lit += '{';
      i += 2;
    } else if (c == '}' && i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
      lit += '}';
      i += 2;
    } else if (c == '{') {
      const size_t close = tmpl.find('}', i);
      if (close == std::string::npos)
        fail(where, ": \"{\" at offset ", i, " has no closing \"}\" (write \"{{\" for a literal brace)");
      literal(lit);
      lit.clear();
      field(tmpl.substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (c == '}') {
      fail(where, ": \"}\" at offset ", i, " closes no field (write \"}}\" for a literal brace)");
    } else {
      lit += c;
      ++i;
    }
  }
  literal(lit);
}

}  // namespace

std::string fill_template(const std::string& tmpl, const std::map<std::string, std::string>& values,
                          const std::string& where) {
  std::string out;
  walk_template(
      tmpl, where, [&](const std::string& lit) { out += lit; },
      [&](const std::string& name) {
        auto it = values.find(name);
        if (it == values.end()) {
          std::string known;
          for (const auto& [k, v] : values) known += (known.empty() ? "" : ", ") + ("{" + k + "}");
          fail(where, ": unknown field {", name, "} (fields: ", known, ")");
        }
        out += it->second;
      });
  return out;
}

std::vector<std::string> template_fields(const std::string& tmpl, const std::string& where) {
  std::vector<std::string> names;
  walk_template(
      tmpl, where, [](const std::string&) {},
      [&](const std::string& name) {
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      });
  return names;
}

}  // namespace lminf
