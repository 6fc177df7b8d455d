// Task `qa`: question answering over long documents (LM-Infinite's eval_downstream_tasks.py on
// Qasper / NarrativeQA, spec sections 4.4 and 5.3). Each JSONL record (data.format: jsonl) fills
// task.template ({field} = the record's value at that dotted path); the prompt's tokens are cut to
// task.max_length as task.truncation says (center: the first and last halves, so a question at the
// end survives, as in LM-Infinite; context: only the document's tokens, at their center); up to task.max_new_tokens tokens are generated greedily and cut at the first stop
// string; the stripped answer is scored against the record's gold answers with SQuAD F1 and exact
// match (max over gold answers; metrics/squad.h), reported x 100 like LM-Infinite.
//   outputs: results.json (f1, exact_match, count, truncation counts), predictions.jsonl; atomic.
// Under data parallelism replica g takes records g, g + dp, ...; rank 0 merges once and writes.
// Resumable: each answer's generated ids go to predictions.partial.jsonl as it completes
// (experiments/outputs/record_journal.h). data.format: jsonl or jsonl.zst.
#pragma once

#include <utility>

#include "experiments/tasks/generation_common.h"
#include "experiments/tasks/task_base.h"

namespace lminf {

struct QaSpec {
  static constexpr const char* kType = "qa";               // task.type
  static constexpr const char* kRecords = "predictions";  // predictions.jsonl and its journal
  std::string records = "jsonl";
  std::string templ = "{context}\n\nQuestion: {question}\nAnswer:";
  std::string context_field = "context";
  std::string answers_field = "answers";
  std::string id_field;
  int64_t max_length = 0;
  std::string truncation = "center";
  int64_t max_new_tokens = 30;
  std::vector<std::string> stop = {"\n"};
  bool stop_at_eos = true;
  int64_t flush_every = 1;
  template <class V>
  void visit(V& v) {
    v("records", records, "how data.path holds the questions: jsonl, one JSON record per line; qasper, AllenAI's "
      "Qasper release (qasper-test-v0.3.json), one record per question with fields id, paper_id, full_text, question "
      "and answers (LM-Infinite's gold mapping)", Choices{"jsonl", "qasper"});
    v("template", templ, "the prompt; {name} is the record's value at dotted path name, {{ and }} are literal braces");
    v("context_field", context_field, "the template field that holds the long document: truncation: context "
      "cuts only its tokens; other modes count prompts whose text after it (the question) was cut");
    v("answers_field", answers_field, "dotted path of the gold answers: a string or a list of strings");
    v("id_field", id_field, "optional dotted path of a record id copied into predictions.jsonl");
    v("max_length", max_length, "prompt tokens (BOS included) kept, cut as task.truncation says (0: no limit)", Min{0});
    v("truncation", truncation, "which prompt tokens are kept beyond max_length: center keeps the first "
      "max_length/2 and the last max_length - max_length/2 (LM-Infinite), left the last, right the first; "
      "context cuts only the document (context_field) at its center, keeping all text before and after it",
      Choices{"center", "left", "right", "context"});
    v("max_new_tokens", max_new_tokens, "tokens generated greedily at most per answer", Min{1});
    v("stop", stop, "generation ends when the generated text contains one of these; the answer is the text before it");
    v("stop_at_eos", stop_at_eos, "end a generation at the tokenizer's EOS token");
    v("flush_every", flush_every, journal_flush_help("predictions"), Min{1});
  }
  // Throws, naming src.file, when keys that are each valid do not go together.
  void check(const SpecSource& src) const;
  // Problems with the rest of the experiment (Task::problems, before any weight is read).
  std::vector<std::string> problems(const ExperimentSpec& spec) const;
};

// The prompt tokens [begin, end) that hold the document: `before` and `through` are the tokenized
// template text before the document and before-and-through it (BOS first when the prompt has one);
// begin/end are the lengths of their common prefixes with the prompt, begin at least min_begin.
std::pair<int64_t, int64_t> document_span(const std::vector<int64_t>& prompt, const std::vector<int64_t>& before,
                                          const std::vector<int64_t>& through, int64_t min_begin);
// Cuts prompt[begin, end) at its center (first half rounded down, truncate_tokens' "center") so that
// the prompt has max_length tokens; false, with the prompt unchanged, when the tokens outside the
// span leave fewer than 2 for it.
bool truncate_span(std::vector<int64_t>& prompt, int64_t begin, int64_t end, int64_t max_length);

// The records of AllenAI's Qasper release ({paper_id: {full_text: [{section_name, paragraphs}], qas:
// [{question, question_id, answers: [{answer: {yes_no, unanswerable, free_form_answer,
// extractive_spans}}]}]}}), one per question, as LM-Infinite's loader builds them (spec section 5.3):
// {id, paper_id, full_text, question, answers}. full_text joins "<section name> <paragraphs joined by
// spaces> " over the sections (a null name counts as ""); each annotator's gold answer is "yes"/"no"
// for yes/no questions, else "unanswerable", else the free-form answer, else the extractive spans
// joined by a space. Errors name `where` and the paper.
std::vector<nlohmann::json> qasper_records(const nlohmann::json& papers, const std::string& where);

// A record's gold answers: a string, or a list of strings (other JSON values are an error naming `where`).
std::vector<std::string> qa_answers(const nlohmann::json& value, const std::string& where);

class QaTask final : public TextRecordTask<QaSpec> {
 public:
  void run(RunContext& ctx) override;
};

}  // namespace lminf
