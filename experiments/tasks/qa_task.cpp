#include "experiments/tasks/qa_task.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "experiments/tasks/generation_common.h"
#include "experiments/tasks/task_base.h"
#include "experiments/outputs/json_records.h"
#include "experiments/data/sequence_source.h"
#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/core/logging.h"
#include "experiments/data/text_data.h"
#include "experiments/data/token_data.h"
#include "metrics/squad.h"

namespace lminf {
namespace {

using json = nlohmann::json;

struct QaRecord {
  std::string where;  // file:line
  json value;
};

std::string field_text(const json& record, const std::string& path, const std::string& where) {
  const json* v = json_at_path(record, path);
  if (!v || v->is_null()) fail(where, ": the record has no field \"", path, "\" (used by task.template)");
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number() || v->is_boolean()) return v->dump();
  fail(where, ": field \"", path, "\" is a JSON ", v->type_name(), ", not text (task.template needs strings or numbers)");
}

std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

bool passes(const json& j, const std::vector<std::pair<std::string, std::string>>& filter) {
  for (const auto& [path, value] : filter) {
    const json* v = json_at_path(j, path);
    if (!v || (v->is_string() ? v->get<std::string>() : v->dump()) != value) return false;
  }
  return true;
}

std::vector<QaRecord> read_records(const DataSpec& data, const std::string& kind) {
  if (data.format != "jsonl" && data.format != "jsonl.zst")
    fail("data.format: task qa reads JSON records: set data.format: jsonl or jsonl.zst (is ", data.format, ")");
  const auto filter = data_filter(data);
  std::vector<QaRecord> out;
  if (kind == "qasper") {
    for (const auto& file : expand_data_path(data.path, data.format, "data")) {
      std::string text;
      DocumentReader::read_lines(file, data.format == "jsonl.zst", [&](const std::string& line, int64_t) {
        text += line;
        text += '\n';
        return true;
      });
      std::string error;
      std::optional<json> parsed = try_parse_json(text, error);
      if (!parsed) fail(file.string(), ": not a Qasper release JSON file (", error, ")");
      json papers = std::move(*parsed);
      for (auto& r : qasper_records(papers, file.string())) {
        if (!passes(r, filter)) continue;
        const std::string where = file.string() + ": question " + r["id"].get<std::string>();
        out.push_back({where, std::move(r)});
        if (data.max_sequences > 0 && static_cast<int64_t>(out.size()) >= data.max_sequences) return out;
      }
    }
    if (out.empty()) fail("data.path: ", data.path, " holds no Qasper questions", filter.empty() ? "" : " that pass data.filter");
    return out;
  }
  bool full = false;
  for (const auto& file : expand_data_path(data.path, data.format, "data")) {
    DocumentReader::read_lines(file, data.format == "jsonl.zst", [&](const std::string& line, int64_t no) {
      if (strip(line).empty()) return true;
      const std::string where = file.string() + ":" + std::to_string(no);
      std::string error;
      std::optional<json> parsed = try_parse_json(line, error);
      if (!parsed) fail(where, ": not a JSON record (", error, ")");
      json j = std::move(*parsed);
      if (!passes(j, filter)) return true;
      out.push_back({where, std::move(j)});
      full = data.max_sequences > 0 && static_cast<int64_t>(out.size()) >= data.max_sequences;
      return !full;
    });
    if (full) return out;
  }
  if (out.empty()) fail("data.path: ", data.path, " holds no records", filter.empty() ? "" : " that pass data.filter");
  return out;
}

// The template filled up to the first {context_field} field, without it (through = false) or with
// it (through = true); the whole template when it has no such field.
std::string template_prefix(const std::string& tmpl, const std::string& context_field, bool through,
                            const std::map<std::string, std::string>& values, const std::string& where) {
  const std::string marker = "{" + context_field + "}";
  const size_t at = tmpl.find(marker);
  if (at == std::string::npos) return fill_template(tmpl, values, where);
  return fill_template(tmpl.substr(0, through ? at + marker.size() : at), values, where);
}

// Number of leading tokens `a` and `b` share.
size_t common_prefix(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

std::pair<int64_t, int64_t> document_span(const std::vector<int64_t>& prompt, const std::vector<int64_t>& before,
                                          const std::vector<int64_t>& through, int64_t min_begin) {
  const int64_t begin = std::max<int64_t>(min_begin, static_cast<int64_t>(common_prefix(prompt, before)));
  const int64_t end = std::max<int64_t>(begin, static_cast<int64_t>(common_prefix(prompt, through)));
  return {begin, end};
}

bool truncate_span(std::vector<int64_t>& prompt, int64_t begin, int64_t end, int64_t max_length) {
  const int64_t outside = static_cast<int64_t>(prompt.size()) - (end - begin);
  const int64_t budget = max_length - outside;
  if (budget < 2) return false;
  std::vector<int64_t> doc(prompt.begin() + begin, prompt.begin() + end);
  truncate_tokens(doc, budget, "center");
  std::vector<int64_t> out(prompt.begin(), prompt.begin() + begin);
  out.insert(out.end(), doc.begin(), doc.end());
  out.insert(out.end(), prompt.begin() + end, prompt.end());
  prompt = std::move(out);
  return true;
}

std::vector<json> qasper_records(const json& papers, const std::string& where) {
  if (!papers.is_object())
    fail(where, ": a Qasper release file is a JSON object {paper_id: paper} (found a JSON ", papers.type_name(), ")");
  auto text_or_empty = [](const json& p, const char* key) {
    auto it = p.find(key);
    return it != p.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::vector<json> out;
  for (const auto& [paper_id, paper] : papers.items()) {
    const std::string at = where + ": paper " + paper_id;
    if (!paper.is_object() || !paper.contains("qas") || !paper.contains("full_text"))
      fail(at, ": expected an object with full_text and qas (AllenAI's qasper-*-v0.3.json layout)");
    std::string full_text;
    for (const auto& section : paper["full_text"]) {
      std::string paragraphs;
      for (const auto& p : section.value("paragraphs", json::array()))
        if (p.is_string()) paragraphs += (paragraphs.empty() ? "" : " ") + p.get<std::string>();
      full_text += text_or_empty(section, "section_name") + " " + paragraphs + " ";
    }
    for (const auto& qa : paper["qas"]) {
      std::vector<std::string> answers;
      for (const auto& annotation : qa.value("answers", json::array())) {
        const json a = annotation.value("answer", json::object());
        if (a.contains("yes_no") && a["yes_no"].is_boolean()) {
          answers.push_back(a["yes_no"].get<bool>() ? "yes" : "no");
        } else if (a.value("unanswerable", false)) {
          answers.push_back("unanswerable");
        } else if (!text_or_empty(a, "free_form_answer").empty()) {
          answers.push_back(a["free_form_answer"].get<std::string>());
        } else {
          std::string spans;
          for (const auto& s : a.value("extractive_spans", json::array()))
            if (s.is_string()) spans += (spans.empty() ? "" : " ") + s.get<std::string>();
          answers.push_back(spans);
        }
      }
      out.push_back({{"id", text_or_empty(qa, "question_id")},
                     {"paper_id", paper_id},
                     {"full_text", full_text},
                     {"question", text_or_empty(qa, "question")},
                     {"answers", answers}});
    }
  }
  return out;
}

std::vector<std::string> qa_answers(const json& value, const std::string& where) {
  if (value.is_string()) return {value.get<std::string>()};
  if (value.is_array()) {
    std::vector<std::string> a;
    for (const auto& x : value) {
      if (!x.is_string()) fail(where, ": task.answers_field: every answer must be a string (found a JSON ", x.type_name(), ")");
      a.push_back(x.get<std::string>());
    }
    return a;
  }
  fail(where, ": task.answers_field: gold answers must be a string or a list of strings (found a JSON ", value.type_name(), ")");
}

void QaSpec::check(const SpecSource& src) const {
  template_fields(templ, src.file + ": task.template");  // throws on unbalanced braces
  for (const auto& s : stop)
    if (s.empty()) fail(src.file, ": task.stop: an empty stop string would end every generation at once");
}

std::vector<std::string> QaSpec::problems(const ExperimentSpec& spec) const {
  std::vector<std::string> p;
  if (spec.data.format != "jsonl" && spec.data.format != "jsonl.zst")
    p.push_back("data.format: task qa reads JSON records (set data.format: jsonl or jsonl.zst)");
  if (max_length > 0 && max_length < 2) p.push_back("task.max_length must be 0 (no limit) or >= 2");
  return p;
}

namespace {

// A record's prompt as the model sees it: tokens (cut to task.max_length as task.truncation says),
// their count before the cut, and whether the text after the document (the question) was cut.
struct QaPrompt {
  std::vector<int64_t> tokens;
  int64_t full_length = 0;
  bool question_cut = false;
};

// The prompt of one record; `values`: its template fields; bos < 0: no BOS.
QaPrompt make_prompt(const QaSpec& spec, const Tokenizer& tokenizer, const std::string& prompt_text,
                     const std::map<std::string, std::string>& values, const std::string& where, int64_t bos) {
  QaPrompt q;
  if (bos >= 0) q.tokens.push_back(bos);
  const auto ids = tokenizer.encode(prompt_text, false);
  q.tokens.insert(q.tokens.end(), ids.begin(), ids.end());
  q.full_length = static_cast<int64_t>(q.tokens.size());
  if (spec.max_length == 0 || q.full_length <= spec.max_length) return q;
  // Where the document's tokens start and end inside the prompt: the prompt tokens shared with the
  // tokenized template text before it, and before-and-including it (so every token kept is one of
  // the prompt's own, and only the split points depend on tokenization at the two boundaries).
  auto encoded_prefix = [&](bool through) {
    std::vector<int64_t> t;
    if (bos >= 0) t.push_back(bos);
    const auto x =
        tokenizer.encode(template_prefix(spec.templ, spec.context_field, through, values, where + ": task.template"), false);
    t.insert(t.end(), x.begin(), x.end());
    return t;
  };
  const auto [doc_begin, doc_end] = document_span(q.tokens, encoded_prefix(false), encoded_prefix(true), bos >= 0 ? 1 : 0);
  const int64_t tail_tokens = q.full_length - doc_end;  // what follows the document: the question
  if (spec.truncation == "context") {
    if (!truncate_span(q.tokens, doc_begin, doc_end, spec.max_length)) {
      // The text around the document alone is too long: cut the whole prompt at its center.
      q.question_cut = tail_tokens > spec.max_length - spec.max_length / 2;
      truncate_tokens(q.tokens, spec.max_length, "center");
    }
  } else {
    const int64_t kept_tail = spec.truncation == "center" ? spec.max_length - spec.max_length / 2
                              : spec.truncation == "left" ? spec.max_length : 0;
    q.question_cut = tail_tokens > kept_tail;
    truncate_tokens(q.tokens, spec.max_length, spec.truncation);
  }
  return q;
}

// predictions.jsonl's record of question i.
json prediction_record(const QaSpec& spec, const QaRecord& r, int64_t i, const QaPrompt& q, const TextGeneration& g,
                       const std::vector<std::string>& answers) {
  const std::string prediction = strip(g.text);
  json rec = {{"index", i},
              {"prompt_tokens", static_cast<int64_t>(q.tokens.size())},
              {"prompt_tokens_before_truncation", q.full_length},
              {"question_cut", q.question_cut},
              {"prediction", prediction},
              {"answers", answers},
              {"stop", g.stop},
              {"generated_tokens", static_cast<int64_t>(g.tokens.size())},
              {"f1", 100.0 * squad_f1(prediction, answers)},
              {"exact_match", 100.0 * squad_exact_match(prediction, answers)}};
  if (!spec.id_field.empty()) {
    const json* id = json_at_path(r.value, spec.id_field);
    rec["id"] = id ? *id : json();
  }
  return rec;
}

// results.json's scores of the sorted predictions (f1 and exact_match averaged, x 100 already).
json qa_results(const std::vector<json>& sorted) {
  double f1 = 0, em = 0;
  int64_t truncated = 0, cut = 0, stopped = 0;
  for (const auto& r : sorted) {
    f1 += r["f1"].get<double>();
    em += r["exact_match"].get<double>();
    truncated += r["prompt_tokens"].get<int64_t>() < r["prompt_tokens_before_truncation"].get<int64_t>();
    cut += r["question_cut"].get<bool>();
    stopped += !r["stop"].get<std::string>().empty();
  }
  const double count = static_cast<double>(sorted.size());
  json results;
  results["task"] = "qa";
  results["count"] = sorted.size();
  results["f1"] = f1 / count;
  results["exact_match"] = em / count;
  results["truncated_prompts"] = truncated;
  results["question_cut"] = cut;
  results["stopped_by_stop_string"] = stopped;
  return results;
}

}  // namespace

void QaTask::run(RunContext& ctx) {
  const ExperimentSpec& es = ctx.spec;
  auto tokenizer = run_tokenizer(es, ctx.model_config);
  const std::vector<QaRecord> records = read_records(es.data, spec_.records);
  const std::vector<std::string> fields = template_fields(spec_.templ, "task.template");
  const int64_t bos = ctx.model_config.bos_token_id;
  if (es.data.prepend_bos && bos < 0)
    fail("data.prepend_bos is true but the model's config.json has no bos_token_id (set data.prepend_bos: false)");
  DataParallelShare share(ctx, static_cast<int64_t>(records.size()));
  log_info("qa: ", records.size(), " questions, max_length ", spec_.max_length, " (", spec_.truncation,
           " truncation), up to ", spec_.max_new_tokens, " new tokens, variant ", ctx.attention.name(), share.log_suffix());

  TextGenerationOptions gen;
  gen.max_new_tokens = spec_.max_new_tokens;
  gen.stop_strings = spec_.stop;
  gen.eos_id = spec_.stop_at_eos ? tokenizer->eos_id() : -1;
  // Each answered question's generated ids go to the journal; a resumed run rebuilds its records.
  RecordLoop loop(ctx, share, resolved(), {QaSpec::kRecords, spec_.flush_every, "qa", "q"});
  json mine = json::array();
  for (int64_t i : loop.items()) {
    const QaRecord& r = records[static_cast<size_t>(i)];
    std::map<std::string, std::string> values;
    for (const auto& f : fields) values[f] = field_text(r.value, f, r.where);
    const std::string prompt_text = fill_template(spec_.templ, values, r.where + ": task.template");
    const json* gold = json_at_path(r.value, spec_.answers_field);
    if (!gold) fail(r.where, ": the record has no field \"", spec_.answers_field, "\" (task.answers_field)");
    const std::vector<std::string> answers = qa_answers(*gold, r.where);
    const QaPrompt q = make_prompt(spec_, *tokenizer, prompt_text, values, r.where, es.data.prepend_bos ? bos : -1);
    const json* journalled = loop.journalled(i);
    const TextGeneration g =
        journalled ? text_generation_of(*tokenizer, journalled->at("generated_ids").get<std::vector<int64_t>>(), gen)
                   : generate_text(ctx.model, ctx.attention, *tokenizer, q.tokens, gen);
    mine.push_back(prediction_record(spec_, r, i, q, g, answers));
    if (!journalled) loop.record({{"index", i}, {"generated_ids", g.tokens}});
  }

  // Merge once; rank 0 writes.
  const json all = loop.merge(mine);
  if (!ctx.writer) return loop.finish();
  const std::vector<json> sorted = sorted_by(all, "index");
  json results = qa_results(sorted);
  const int64_t cut = results["question_cut"].get<int64_t>();
  if (cut > 0)
    log_warn("qa: in ", cut, " of ", sorted.size(), " prompts the text after {", spec_.context_field,
             "} is longer than the tokens truncation keeps at the end: the question was cut (raise task.max_length)");
  write_jsonl_atomic(ctx.final_dir / records_file(), json(sorted));
  loop.finish(ctx, results);
  std::printf("qa: %lld questions  F1 %.2f  EM %.2f\n", static_cast<long long>(sorted.size()),
              results["f1"].get<double>(), results["exact_match"].get<double>());
  std::fflush(stdout);
}

}  // namespace lminf
