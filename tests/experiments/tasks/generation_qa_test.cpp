// Tasks `generation` and `qa` end to end through the lminf binary on a tiny random model (with the
// embedded model's SentencePiece tokenizer), checked against models/generate.h run directly on the
// same prompts; the shared generation helpers (stop strings, templates, the data-parallel merge);
// and one small run of each task on the embedded model.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>

#include <nlohmann/json.hpp>

#include "attention/registry.h"
#include "experiments/outputs/json_records.h"
#include "experiments/tasks/generation_common.h"
#include "experiments/tasks/generation_task.h"
#include "experiments/tasks/qa_task.h"
#include "experiments/data/token_data.h"
#include "framework/text/tokenizer.h"
#include "metrics/squad.h"
#include "models/model_config_json.h"
#include "models/generate.h"
#include "models/random_checkpoint.h"
#include "support/test_support.h"

namespace lminf {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using lminf::testing::lminf_binary;
using lminf::testing::read_text;
using lminf::testing::run_command;
using lminf::testing::source_dir;
using lminf::testing::TempDir;
using lminf::testing::write_text;

fs::path embedded() { return source_dir() / "embedded" / "lminf-info-1m"; }

std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> out;
  std::istringstream in(read_text(p));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

const char* kSentences[] = {
    "The stream editor reads its input line by line and applies each command in the script. ",
    "A regular expression matches a set of strings; grep prints the lines that contain a match. ",
    "Options that take an argument may be written with an equals sign or as the next word. ",
    "When the hold space is empty, the exchange command copies the pattern space into it. ",
    "The diff program compares two files and reports the lines that differ between them. ",
};

std::string document(int i, int sentences) {
  std::string s;
  for (int k = 0; k < sentences; ++k) s += kSentences[(i + 2 * k) % 5];
  return s;
}

class GenerationQa : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ModelConfig c = llama_preset("tiny");
    c.vocab_size = 1024;  // the embedded tokenizer's
    c.bos_token_id = 1;
    c.eos_token_ids = {2};
    write_random_llama(dir_->path() / "model", c, 11);
    fs::create_directories(dir_->path() / "docs");
    for (int i = 0; i < 3; ++i) write_text(dir_->path() / "docs" / ("d" + std::to_string(i) + ".txt"), document(i, 3 + 2 * i));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path root() { return dir_->path(); }
  static TempDir* dir_;
};
TempDir* GenerationQa::dir_ = nullptr;

TEST_F(GenerationQa, GenerationMatchesGenerateOnTheSamePrompts) {
  const fs::path out = root() / "gen";
  write_text(root() / "gen.yaml",
             "name: gen\nthreads: 1\n"
             "model: {path: " + (root() / "model").string() + "}\n"
             "attention: {variant: lambda, local_branch: 16, global_branch: 2}\n"
             "data: {format: text, path: " + (root() / "docs").string() + ", tokenizer: " + embedded().string() + "}\n"
             "task: {type: generation, depths: [20, 100], max_new_tokens: 8, truncation_baseline: true, baseline_length: 12, stop_at_eos: false}\n"
             "output: {dir: " + out.string() + "}\n");
  std::string log;
  ASSERT_EQ(run_command(lminf_binary().string() + " run " + (root() / "gen.yaml").string(), &log), 0) << log;

  // The documents as the task reads them: BOS + the tokenizer's ids, in file order.
  auto tok = load_tokenizer(embedded());
  std::vector<std::vector<int64_t>> docs;
  for (int i = 0; i < 3; ++i) {
    std::vector<int64_t> d = {1};
    const auto ids = tok->encode(read_text(root() / "docs" / ("d" + std::to_string(i) + ".txt")), false);
    d.insert(d.end(), ids.begin(), ids.end());
    docs.push_back(d);
  }
  const ModelConfig config = load_model_config(root() / "model");
  auto model = load_model(root() / "model", config, LoadOptions{});
  auto lambda = make_attention(AttentionSpec::parse("{variant: lambda, local_branch: 16, global_branch: 2}"));
  auto vanilla = make_attention(AttentionSpec{});

  const auto recs = read_jsonl(out / "generations.jsonl");
  int64_t expected = 0, skipped100 = 0;
  for (const auto& d : docs) {
    expected += 2 * ((d.size() >= 28) + (d.size() >= 108));
    skipped100 += d.size() < 108;
  }
  ASSERT_GT(skipped100, 0) << "the test wants one document too short for depth 100";
  ASSERT_LT(skipped100, 3);
  ASSERT_EQ(static_cast<int64_t>(recs.size()), expected);
  for (const auto& r : recs) {
    const auto& d = docs[r["document"].get<size_t>()];
    const int64_t depth = r["depth"].get<int64_t>();
    const bool truncated = r["variant"] == "truncated";
    // Prompt: exactly `depth` tokens, or for the baseline only the last 12 of them.
    const int64_t start = truncated ? std::max<int64_t>(0, depth - 12) : 0;
    EXPECT_EQ(r["prompt_start"].get<int64_t>(), start);
    EXPECT_EQ(r["prompt_tokens"].get<int64_t>(), depth - start);
    const std::vector<int64_t> prompt(d.begin() + start, d.begin() + depth);
    GenerateOptions g;
    g.max_new_tokens = 8;
    const auto want = generate(*model, truncated ? *vanilla : *lambda, prompt, g);
    EXPECT_EQ(r["generated_ids"].get<std::vector<int64_t>>(), want) << r.dump();
    EXPECT_EQ(r["generated"].get<std::string>(), tok->decode(want, true));
    EXPECT_EQ(r["reference"].get<std::string>(),
              tok->decode(std::vector<int64_t>(d.begin() + depth, d.begin() + depth + 8), true));
  }
  const json res = json::parse(read_text(out / "results.json"));
  ASSERT_EQ(res["depths"].size(), 2u);
  EXPECT_EQ(res["depths"][1]["skipped_short"].get<int64_t>(), skipped100);
  // results.json's scores are those of the records it summarizes.
  for (const auto& e : res["depths"])
    for (const std::string v : {"full", "truncated"}) {
      std::vector<const json*> sel;
      for (const auto& r : recs)
        if (r["depth"] == e["depth"] && r["variant"] == v) sel.push_back(&r);
      const json s = score_generations(sel);
      EXPECT_EQ(e[v]["count"], s["count"]);
      EXPECT_DOUBLE_EQ(e[v]["bleu"].get<double>(), s["bleu"].get<double>());
      EXPECT_DOUBLE_EQ(e[v]["rougeL"].get<double>(), s["rougeL"].get<double>());
      EXPECT_DOUBLE_EQ(e[v]["rougeLsum"].get<double>(), s["rougeLsum"].get<double>());
    }
  EXPECT_EQ(res["provenance"]["variant"], "lambda");
}

TEST_F(GenerationQa, GenerationFindsNoLongEnoughDocument) {
  write_text(root() / "short.yaml",
             "name: gen\nmodel: {path: " + (root() / "model").string() + "}\n"
             "data: {format: text, path: " + (root() / "docs").string() + ", tokenizer: " + embedded().string() + "}\n"
             "task: {type: generation, depths: [20], max_new_tokens: 8, min_document_length: 100000}\n"
             "output: {dir: " + (root() / "short").string() + "}\n");
  std::string log;
  EXPECT_NE(run_command(lminf_binary().string() + " run " + (root() / "short.yaml").string(), &log), 0);
  EXPECT_NE(log.find("min_document_length"), std::string::npos) << log;
}

TEST_F(GenerationQa, QaCenterTruncationKeepsBothEndsAndTheQuestion) {
  std::string jsonl;
  for (int i = 0; i < 3; ++i)
    jsonl += json({{"id", "q" + std::to_string(i)},
                   {"doc", {{"text", document(i, 4 + 3 * i)}}},
                   {"q", "What does grep print?"},
                   {"gold", i == 0 ? json("the lines that contain a match") : json({"lines", "matching lines"})}})
                 .dump() +
             "\n";
  write_text(root() / "qa.jsonl", jsonl);
  const fs::path out = root() / "qa";
  write_text(root() / "qa.yaml",
             "name: qa\nthreads: 1\n"
             "model: {path: " + (root() / "model").string() + "}\n"
             "data: {format: jsonl, path: " + (root() / "qa.jsonl").string() + ", tokenizer: " + embedded().string() + "}\n"
             "task:\n  type: qa\n  template: \"{doc.text}\\n\\nQuestion: {q}\\nAnswer:\"\n  context_field: doc.text\n"
             "  answers_field: gold\n  id_field: id\n  max_length: 64\n  max_new_tokens: 12\n  stop: [\"e\"]\n"
             "output: {dir: " + out.string() + "}\n");
  std::string log;
  ASSERT_EQ(run_command(lminf_binary().string() + " run " + (root() / "qa.yaml").string(), &log), 0) << log;

  auto tok = load_tokenizer(embedded());
  const ModelConfig config = load_model_config(root() / "model");
  auto model = load_model(root() / "model", config, LoadOptions{});
  auto vanilla = make_attention(AttentionSpec{});
  const auto recs = read_jsonl(out / "predictions.jsonl");
  ASSERT_EQ(recs.size(), 3u);
  double f1 = 0;
  int truncated = 0;
  for (int i = 0; i < 3; ++i) {
    const json& r = recs[static_cast<size_t>(i)];
    EXPECT_EQ(r["id"], "q" + std::to_string(i));
    const std::string question_part = "\n\nQuestion: What does grep print?\nAnswer:";
    std::vector<int64_t> full = {1};
    const auto ids = tok->encode(document(i, 4 + 3 * i) + question_part, false);
    full.insert(full.end(), ids.begin(), ids.end());
    EXPECT_EQ(r["prompt_tokens_before_truncation"].get<int64_t>(), static_cast<int64_t>(full.size()));
    std::vector<int64_t> prompt = full;
    if (full.size() > 64) {
      ++truncated;
      truncate_tokens(prompt, 64, "center");
      // The first 32 and the last 32 tokens of the full prompt; the question is inside the tail.
      ASSERT_EQ(prompt.size(), 64u);
      EXPECT_TRUE(std::equal(prompt.begin(), prompt.begin() + 32, full.begin()));
      EXPECT_TRUE(std::equal(prompt.begin() + 32, prompt.end(), full.end() - 32));
      EXPECT_NE(tok->decode(std::vector<int64_t>(prompt.begin() + 32, prompt.end()), true).find(question_part),
                std::string::npos);
      EXPECT_FALSE(r["question_cut"].get<bool>());
    }
    EXPECT_EQ(r["prompt_tokens"].get<int64_t>(), static_cast<int64_t>(prompt.size()));
    TextGenerationOptions o;
    o.max_new_tokens = 12;
    o.stop_strings = {"e"};
    o.eos_id = 2;
    const TextGeneration g = generate_text(*model, *vanilla, *tok, prompt, o);
    std::string want = g.text;  // stripped of surrounding whitespace
    while (!want.empty() && std::isspace(static_cast<unsigned char>(want.back()))) want.pop_back();
    while (!want.empty() && std::isspace(static_cast<unsigned char>(want.front()))) want.erase(0, 1);
    EXPECT_EQ(r["prediction"].get<std::string>(), want);
    EXPECT_EQ(r["prediction"].get<std::string>().find('e'), std::string::npos);  // cut at the stop string
    const std::vector<std::string> gold = qa_answers(r["answers"], "predictions.jsonl");
    EXPECT_NEAR(r["f1"].get<double>(), 100 * squad_f1(want, gold), 1e-12);
    f1 += r["f1"].get<double>();
  }
  EXPECT_EQ(truncated, 3);
  const json res = json::parse(read_text(out / "results.json"));
  EXPECT_EQ(res["count"].get<int64_t>(), 3);
  EXPECT_NEAR(res["f1"].get<double>(), f1 / 3, 1e-12);
  EXPECT_EQ(res["truncated_prompts"].get<int64_t>(), truncated);
}

TEST_F(GenerationQa, QaCountsQuestionsThatCenterTruncationCuts) {
  // max_length 40 keeps a 20-token tail, shorter than the ~25 tokens of "\n\nQuestion: ...\nAnswer:".
  write_text(root() / "cut.jsonl", json({{"context", document(0, 4)}, {"question", "What does grep print?"}, {"answers", "lines"}}).dump() + "\n");
  write_text(root() / "cut.yaml",
             "name: qa\nthreads: 1\nmodel: {path: " + (root() / "model").string() + "}\n"
             "data: {format: jsonl, path: " + (root() / "cut.jsonl").string() + ", tokenizer: " + embedded().string() + "}\n"
             "task: {type: qa, max_length: 40, max_new_tokens: 2}\n"
             "output: {dir: " + (root() / "cut").string() + "}\n");
  std::string log;
  ASSERT_EQ(run_command(lminf_binary().string() + " run " + (root() / "cut.yaml").string(), &log), 0) << log;
  const json res = json::parse(read_text(root() / "cut" / "results.json"));
  EXPECT_EQ(res["question_cut"].get<int64_t>(), 1);
  EXPECT_NE(log.find("the question was cut"), std::string::npos) << log;
  // And a template field the records lack fails naming the file and line.
  write_text(root() / "bad.yaml",
             "name: qa\nmodel: {path: " + (root() / "model").string() + "}\n"
             "data: {format: jsonl, path: " + (root() / "cut.jsonl").string() + ", tokenizer: " + embedded().string() + "}\n"
             "task: {type: qa, template: \"{context} {nope}\"}\n"
             "output: {dir: " + (root() / "bad").string() + "}\n");
  EXPECT_NE(run_command(lminf_binary().string() + " run " + (root() / "bad.yaml").string(), &log), 0);
  EXPECT_NE(log.find("cut.jsonl:1: the record has no field \"nope\""), std::string::npos) << log;
}

TEST_F(GenerationQa, QaContextTruncationKeepsTheTextAroundTheDocument) {
  // A header of ~45 tokens: center truncation of the whole prompt to 72 would keep only part of it.
  const std::string header = "Read this manual carefully, then answer the question at the end. Answer with one word.";
  write_text(root() / "ctx.jsonl", json({{"context", document(1, 6)}, {"question", "What does grep print?"}, {"answers", "lines"}}).dump() + "\n");
  write_text(root() / "ctx.yaml",
             "name: qa\nthreads: 1\nmodel: {path: " + (root() / "model").string() + "}\n"
             "data: {format: jsonl, path: " + (root() / "ctx.jsonl").string() + ", tokenizer: " + embedded().string() + "}\n"
             "task: {type: qa, template: \"" + header + "\\n{context}\\n\\nQuestion: {question}\\nAnswer:\", "
             "max_length: 72, truncation: context, max_new_tokens: 2}\n"
             "output: {dir: " + (root() / "ctx").string() + "}\n");
  std::string log;
  ASSERT_EQ(run_command(lminf_binary().string() + " run " + (root() / "ctx.yaml").string(), &log), 0) << log;
  const auto recs = read_jsonl(root() / "ctx" / "predictions.jsonl");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["prompt_tokens"].get<int64_t>(), 72);
  EXPECT_FALSE(recs[0]["question_cut"].get<bool>());
  // The prompt the task must have used: the whole header and question, the document cut at its center.
  auto tok = load_tokenizer(embedded());
  auto with_bos = [&](const std::string& text) {
    std::vector<int64_t> t = {1};
    const auto ids = tok->encode(text, false);
    t.insert(t.end(), ids.begin(), ids.end());
    return t;
  };
  const std::string question = "\n\nQuestion: What does grep print?\nAnswer:";
  std::vector<int64_t> prompt = with_bos(header + "\n" + document(1, 6) + question);
  const auto [begin, end] = document_span(prompt, with_bos(header + "\n"), with_bos(header + "\n" + document(1, 6)), 1);
  ASSERT_GT(begin, 36);  // the header alone is longer than center truncation's first half
  ASSERT_TRUE(truncate_span(prompt, begin, end, 72));
  ASSERT_EQ(prompt.size(), 72u);
  const std::string text = tok->decode(prompt, true);
  EXPECT_EQ(text.find(header), 0u) << text;
  EXPECT_EQ(text.substr(text.size() - question.size()), question) << text;
  const ModelConfig config = load_model_config(root() / "model");
  auto model = load_model(root() / "model", config, LoadOptions{});
  TextGenerationOptions o;
  o.max_new_tokens = 2;
  o.stop_strings = {"\n"};
  o.eos_id = 2;
  std::string want = generate_text(*model, *make_attention(AttentionSpec{}), *tok, prompt, o).text;
  while (!want.empty() && std::isspace(static_cast<unsigned char>(want.back()))) want.pop_back();
  while (!want.empty() && std::isspace(static_cast<unsigned char>(want.front()))) want.erase(0, 1);
  EXPECT_EQ(recs[0]["prediction"].get<std::string>(), want);
}

// A miniature of AllenAI's qasper-*-v0.3.json: every branch of the gold mapping (spec section 5.3).
const char* kQasper = R"({
 "p1": {"title": "T", "abstract": "A",
        "full_text": [{"section_name": "Intro", "paragraphs": ["First para.", "Second para."]},
                      {"section_name": null, "paragraphs": ["Tail."]}],
        "qas": [{"question": "Is it good?", "question_id": "q1",
                 "answers": [{"answer": {"unanswerable": false, "extractive_spans": [], "yes_no": true, "free_form_answer": ""}},
                             {"answer": {"unanswerable": true, "extractive_spans": [], "yes_no": null, "free_form_answer": ""}}]},
                {"question": "What is used?", "question_id": "q2",
                 "answers": [{"answer": {"unanswerable": false, "extractive_spans": ["BERT", "ELMo"], "yes_no": null, "free_form_answer": ""}},
                             {"answer": {"unanswerable": false, "extractive_spans": ["x"], "yes_no": null, "free_form_answer": "a transformer"}}]}]},
 "p2": {"full_text": [], "qas": [{"question": "Q?", "question_id": "q3", "answers": [{"answer": {"yes_no": false}}]}]}
})";

TEST(QaQasper, RecordsFollowTheGoldMapping) {
  const auto recs = qasper_records(json::parse(kQasper), "qasper.json");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0]["id"], "q1");
  EXPECT_EQ(recs[0]["paper_id"], "p1");
  EXPECT_EQ(recs[0]["full_text"], "Intro First para. Second para.  Tail. ");
  EXPECT_EQ(recs[0]["question"], "Is it good?");
  EXPECT_EQ(recs[0]["answers"], json({"yes", "unanswerable"}));
  EXPECT_EQ(recs[1]["answers"], json({"BERT ELMo", "a transformer"}));
  EXPECT_EQ(recs[2]["answers"], json({"no"}));
  EXPECT_EQ(recs[2]["full_text"], "");
  EXPECT_NE(lminf::testing::error_of([] { qasper_records(json::array(), "x.json"); }).find("x.json: a Qasper release file"),
            std::string::npos);
}

TEST_F(GenerationQa, QaReadsTheQasperRelease) {
  write_text(root() / "qasper-test-v0.3.json", kQasper);
  write_text(root() / "qasper.yaml",
             "name: qa\nthreads: 1\nmodel: {path: " + (root() / "model").string() + "}\n"
             "data: {format: jsonl, path: " + (root() / "qasper-test-v0.3.json").string() + ", tokenizer: " + embedded().string() + "}\n"
             "task: {type: qa, records: qasper, template: \"{full_text} Question: {question}\", id_field: id, max_new_tokens: 2}\n"
             "output: {dir: " + (root() / "qasper").string() + "}\n");
  std::string log;
  ASSERT_EQ(run_command(lminf_binary().string() + " run " + (root() / "qasper.yaml").string(), &log), 0) << log;
  const auto recs = read_jsonl(root() / "qasper" / "predictions.jsonl");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1]["id"], "q2");
  EXPECT_EQ(recs[1]["answers"], json({"BERT ELMo", "a transformer"}));
}

TEST(QaTruncation, DocumentSpanAndCenterCutOfTheSpan) {
  std::vector<int64_t> prompt(100);
  for (int64_t i = 0; i < 100; ++i) prompt[static_cast<size_t>(i)] = i;
  std::vector<int64_t> before(prompt.begin(), prompt.begin() + 10), through(prompt.begin(), prompt.begin() + 80);
  before.push_back(555);   // the text before the document ends in a token the prompt merges differently
  through.push_back(777);
  EXPECT_EQ(document_span(prompt, before, through, 1), (std::pair<int64_t, int64_t>{10, 80}));
  EXPECT_EQ(document_span(prompt, {}, through, 1), (std::pair<int64_t, int64_t>{1, 80}));  // never before BOS
  std::vector<int64_t> p = prompt;
  ASSERT_TRUE(truncate_span(p, 10, 80, 50));  // 30 tokens outside the span: 20 of the document stay
  std::vector<int64_t> want;
  for (int64_t i = 0; i < 20; ++i) want.push_back(i);   // head + the document's first 10
  for (int64_t i = 70; i < 100; ++i) want.push_back(i);  // the document's last 10 + tail
  EXPECT_EQ(p, want);
  std::vector<int64_t> q = prompt;
  EXPECT_FALSE(truncate_span(q, 10, 80, 31));  // only 1 document token would fit
  EXPECT_EQ(q, prompt);
}

TEST_F(GenerationQa, StopStringsCutTheTextAndEndGeneration) {
  auto tok = load_tokenizer(embedded());
  const ModelConfig config = load_model_config(root() / "model");
  auto model = load_model(root() / "model", config, LoadOptions{});
  auto vanilla = make_attention(AttentionSpec{});
  std::vector<int64_t> prompt = {1};
  const auto ids = tok->encode(document(0, 2), false);
  prompt.insert(prompt.end(), ids.begin(), ids.end());
  TextGenerationOptions free_run;
  free_run.max_new_tokens = 24;
  const TextGeneration all = generate_text(*model, *vanilla, *tok, prompt, free_run);
  ASSERT_EQ(all.tokens.size(), 24u);
  ASSERT_GT(all.text.size(), 6u);
  // A stop string taken from the middle of the free-running text.
  const std::string stop = all.text.substr(all.text.size() / 2, 2);
  TextGenerationOptions o = free_run;
  o.stop_strings = {"never there", stop};
  const TextGeneration g = generate_text(*model, *vanilla, *tok, prompt, o);
  EXPECT_EQ(g.stop, stop);
  EXPECT_EQ(g.text, all.text.substr(0, all.text.find(stop)));
  // Generation ended at the first token whose text completes the stop string.
  ASSERT_LE(g.tokens.size(), all.tokens.size());
  EXPECT_TRUE(std::equal(g.tokens.begin(), g.tokens.end(), all.tokens.begin()));
  EXPECT_NE(tok->decode(g.tokens, true).find(stop), std::string::npos);
  std::vector<int64_t> shorter(g.tokens.begin(), g.tokens.end() - 1);
  EXPECT_EQ(tok->decode(shorter, true).find(stop), std::string::npos);
}

TEST(GenerationCommon, CutAtStopTemplatesAndFirstInteger) {
  std::string t = "yes</Answer>\nmore";
  EXPECT_EQ(cut_at_stop(t, {"\n", "</Answer>"}), "</Answer>");
  EXPECT_EQ(t, "yes");
  std::string u = "abc";
  EXPECT_EQ(cut_at_stop(u, {"x"}), "");
  EXPECT_EQ(u, "abc");
  std::string v = "a\n\nb";
  EXPECT_EQ(cut_at_stop(v, {"\n", "\n\n"}), "\n\n");  // same position: the longer stop
  EXPECT_EQ(v, "a");

  EXPECT_EQ(fill_template("{a} and {b.c} {{literal}}", {{"a", "1"}, {"b.c", "2"}}, "t"), "1 and 2 {literal}");
  EXPECT_EQ(template_fields("{x}{y}{x}", "t"), (std::vector<std::string>{"x", "y"}));
  EXPECT_NE(lminf::testing::error_of([] { fill_template("{z}", {{"a", "1"}}, "task.template"); }).find("unknown field {z}"),
            std::string::npos);
  EXPECT_NE(lminf::testing::error_of([] { template_fields("{open", "task.template"); }).find("no closing"), std::string::npos);

  EXPECT_EQ(first_integer("The pass key is 68421. Remember"), "68421");
  EXPECT_EQ(first_integer("none"), "");
  EXPECT_EQ(first_integer("007 and 8"), "007");
}

// A two-replica data-parallel group seen from rank 0: all_gather appends what rank 1 would send.
class FakeTwoRanks final : public Communicator {
 public:
  explicit FakeTwoRanks(std::string other) : other_(std::move(other)) {}
  std::string name() const override { return "fake"; }
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void all_reduce(at::Tensor&, ReduceOp) override {}
  at::Tensor all_gather(const at::Tensor& t, int64_t dim) override {
    ++gathers;
    if (t.scalar_type() == at::kLong) return at::cat({t, at::full({1}, static_cast<int64_t>(other_.size()), at::kLong)}, 0);
    at::Tensor o = at::zeros_like(t);
    std::memcpy(o.data_ptr<uint8_t>(), other_.data(), other_.size());
    return at::cat({t, o}, dim);
  }
  void broadcast(at::Tensor&, int) override {}
  void barrier() override {}
  std::unique_ptr<Communicator> split(int, int) override { return nullptr; }
  int gathers = 0;

 private:
  std::string other_;
};

TEST(GenerationCommon, DataParallelMergeGathersOnceInRankOrder) {
  const json rank1 = json::array({{{"index", 1}, {"text", "b"}}});
  const json rank0 = json::array({{{"index", 0}, {"text", "a longer record than rank 1's, with unicode: é"}},
                                  {{"index", 2}, {"text", "c"}}});
  FakeTwoRanks dp(rank1.dump());
  const json merged = gather_json_arrays(dp, rank0);
  EXPECT_EQ(dp.gathers, 2);  // one gather of the lengths, one of the bytes
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0], rank0[0]);
  EXPECT_EQ(merged[1], rank0[1]);
  EXPECT_EQ(merged[2], rank1[0]);
  LocalCommunicator one;
  EXPECT_EQ(gather_json_arrays(one, rank0), rank0);
}

// The embedded model (trained context 128) through the binary: one small run of each task.
TEST(GenerationQaEmbedded, SmallRunsOfBothTasks) {
  TempDir dir;
  fs::create_directories(dir.path() / "docs");
  for (int i = 0; i < 2; ++i) write_text(dir.path() / "docs" / ("d" + std::to_string(i) + ".txt"), document(i, 12));
  write_text(dir.path() / "gen.yaml",
             "name: gen\nthreads: 1\nmodel: {path: " + embedded().string() + "}\n"
             "attention: {variant: lambda, local_branch: 64, global_branch: 4}\n"
             "data: {format: text, path: " + (dir.path() / "docs").string() + "}\n"
             "task: {type: generation, depths: [32, 160], max_new_tokens: 16, truncation_baseline: true}\n"
             "output: {dir: " + (dir.path() / "gen").string() + "}\n");
  std::string log;
  ASSERT_EQ(run_command(lminf_binary().string() + " run " + (dir.path() / "gen.yaml").string(), &log), 0) << log;
  const json g = json::parse(read_text(dir.path() / "gen" / "results.json"));
  for (const auto& e : g["depths"]) {
    EXPECT_EQ(e["full"]["count"].get<int64_t>(), 2) << g.dump(1);
    EXPECT_GE(e["full"]["rouge1"].get<double>(), 0.0);
    EXPECT_LE(e["full"]["rouge1"].get<double>(), 1.0);
  }
  EXPECT_EQ(read_jsonl(dir.path() / "gen" / "generations.jsonl").size(), 8u);

  write_text(dir.path() / "qa.jsonl",
             json({{"context", document(0, 12)}, {"question", "What compares two files?"}, {"answers", {"diff", "the diff program"}}}).dump() + "\n" +
             json({{"context", document(1, 12)}, {"question", "What prints matching lines?"}, {"answers", "grep"}}).dump() + "\n");
  write_text(dir.path() / "qa.yaml",
             "name: qa\nthreads: 1\nmodel: {path: " + embedded().string() + "}\n"
             "attention: {variant: lambda, local_branch: 64, global_branch: 4}\n"
             "data: {format: jsonl, path: " + (dir.path() / "qa.jsonl").string() + "}\n"
             "task: {type: qa, max_length: 96, max_new_tokens: 10}\n"
             "output: {dir: " + (dir.path() / "qa").string() + "}\n");
  ASSERT_EQ(run_command(lminf_binary().string() + " run " + (dir.path() / "qa.yaml").string(), &log), 0) << log;
  const json q = json::parse(read_text(dir.path() / "qa" / "results.json"));
  EXPECT_EQ(q["count"].get<int64_t>(), 2);
  EXPECT_EQ(q["truncated_prompts"].get<int64_t>(), 2);
  EXPECT_EQ(q["question_cut"].get<int64_t>(), 0);
  EXPECT_NE(log.find("F1"), std::string::npos) << log;
}

}  // namespace
}  // namespace lminf
