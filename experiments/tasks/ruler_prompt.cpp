#include "experiments/tasks/ruler_prompt.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "experiments/tasks/generation_common.h"
#include "experiments/tasks/sample_rng.h"
#include "framework/core/error.h"
#include "framework/io/json_file.h"
#include "framework/core/format.h"

namespace lminf {
namespace fs = std::filesystem;

// ---- the tasks ----------------------------------------------------------------------------------

const std::vector<RulerTaskDef>& ruler_task_defs() {
  using K = RulerKind;
  // name, kind, haystack, key type, value type, keys, values, queries, dataset, tokens to generate, part
  static const std::vector<RulerTaskDef> defs = {
      {"niah_single_1", K::kNiah, "noise", "words", "numbers", 1, 1, 1, "", 128, false},
      {"niah_single_2", K::kNiah, "text", "words", "numbers", 1, 1, 1, "", 128, false},
      {"niah_single_3", K::kNiah, "text", "words", "uuids", 1, 1, 1, "", 128, false},
      {"niah_multikey_1", K::kNiah, "text", "words", "numbers", 4, 1, 1, "", 128, false},
      {"niah_multikey_2", K::kNiah, "needle", "words", "numbers", 1, 1, 1, "", 128, false},
      {"niah_multikey_3", K::kNiah, "needle", "uuids", "uuids", 1, 1, 1, "", 128, false},
      {"niah_multivalue", K::kNiah, "text", "words", "numbers", 1, 4, 1, "", 128, false},
      {"niah_multiquery", K::kNiah, "text", "words", "numbers", 1, 1, 4, "", 128, false},
      {"vt", K::kVt, "noise", "", "", 1, 1, 1, "", 30, false},
      {"cwe", K::kCwe, "", "", "", 1, 1, 1, "", 120, false},
      {"fwe", K::kFwe, "", "", "", 1, 1, 1, "", 50, false},
      {"qa_1", K::kQa, "", "", "", 1, 1, 1, "squad", 32, true},
      {"qa_2", K::kQa, "", "", "", 1, 1, 1, "hotpotqa", 32, true},
  };
  return defs;
}

std::vector<std::string> ruler_task_names() {
  std::vector<std::string> names;
  for (const auto& d : ruler_task_defs()) names.push_back(d.name);
  return names;
}

const RulerTaskDef& ruler_task_def(const std::string& name) {
  for (const auto& d : ruler_task_defs())
    if (d.name == name) return d;
  fail("ruler: \"", name, "\" is not a RULER task (tasks: ", join_list(ruler_task_names()), ")");
}

uint64_t ruler_sample_seed(int64_t seed, const std::string& task, int64_t length, int64_t sample) {
  uint64_t h = splitmix64(static_cast<uint64_t>(seed) ^ 0x52554C4552ULL);  // "RULER"
  for (uint64_t v : {fnv1a(task), static_cast<uint64_t>(length), static_cast<uint64_t>(sample)}) h = splitmix64(h ^ v);
  return h;
}

// ---- resources ----------------------------------------------------------------------------------

namespace {

std::string read_whole(const fs::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(what, ": cannot read ", path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json read_json(const fs::path& path, const std::string& what) {
  std::string error;
  std::optional<nlohmann::json> parsed = try_parse_json(read_whole(path, what), error);
  if (!parsed) fail(what, ": ", path.string(), " is not JSON (", error, ")");
  return std::move(*parsed);
}

void split_words(const std::string& text, std::vector<std::string>& out) {
  std::string w;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!w.empty()) out.push_back(std::move(w));
      w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) out.push_back(std::move(w));
}

}  // namespace

std::vector<std::string> read_word_list(const fs::path& path) {
  std::istringstream in(read_whole(path, "task.words_file"));
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (std::string line; std::getline(in, line);) {
    if (line.size() < 3 || line.size() > 12) continue;
    if (!std::all_of(line.begin(), line.end(), [](char c) { return c >= 'a' && c <= 'z'; })) continue;
    if (seen.insert(line).second) out.push_back(line);
  }
  return out;
}

std::vector<std::string> read_text_words(const fs::path& path) {
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path))
      if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) fail("task.haystack: ", path.string(), " holds no *.txt file");
  } else {
    files.push_back(path);
  }
  std::vector<std::string> words;
  for (const auto& f : files) split_words(read_whole(f, "task.haystack"), words);
  return words;
}

QaSet read_squad(const fs::path& path) {
  const nlohmann::json j = read_json(path, "task.squad");
  if (!j.is_object() || !j.contains("data")) fail("task.squad: ", path.string(), " has no \"data\" (a SQuAD JSON file)");
  QaSet set;
  std::map<std::string, int64_t> index;
  auto doc_of = [&](const std::string& text) {
    auto [it, added] = index.emplace(text, static_cast<int64_t>(set.docs.size()));
    if (added) set.docs.push_back(text);
    return it->second;
  };
  for (const auto& article : j["data"]) {
    std::vector<int64_t> docs;
    for (const auto& p : article.at("paragraphs")) docs.push_back(doc_of(p.at("context").get<std::string>()));
    size_t k = 0;
    for (const auto& p : article.at("paragraphs")) {
      const int64_t gold = docs[k++];
      for (const auto& q : p.at("qas")) {
        if (q.value("is_impossible", false) || q.at("answers").empty()) continue;
        QaItem item;
        item.question = q.at("question").get<std::string>();
        for (const auto& a : q.at("answers")) item.answers.push_back(a.at("text").get<std::string>());
        item.gold = {gold};
        for (int64_t d : docs)
          if (d != gold && std::find(item.related.begin(), item.related.end(), d) == item.related.end())
            item.related.push_back(d);
        set.items.push_back(std::move(item));
      }
    }
  }
  if (set.items.empty()) fail("task.squad: ", path.string(), " holds no answerable question");
  return set;
}

QaSet read_hotpotqa(const fs::path& path) {
  const nlohmann::json j = read_json(path, "task.hotpotqa");
  if (!j.is_array()) fail("task.hotpotqa: ", path.string(), " is not a JSON list (a HotpotQA file)");
  QaSet set;
  std::map<std::string, int64_t> index;
  for (const auto& q : j) {
    QaItem item;
    item.question = q.at("question").get<std::string>();
    item.answers = {q.at("answer").get<std::string>()};
    for (const auto& c : q.at("context")) {
      std::string text = c.at(0).get<std::string>() + "\n";
      for (const auto& s : c.at(1)) text += s.get<std::string>();
      auto [it, added] = index.emplace(text, static_cast<int64_t>(set.docs.size()));
      if (added) set.docs.push_back(text);
      item.gold.push_back(it->second);
    }
    set.items.push_back(std::move(item));
  }
  if (set.items.empty()) fail("task.hotpotqa: ", path.string(), " holds no question");
  return set;
}

// ---- numbers --------------------------------------------------------------------------------------

double riemann_zeta(double s) {
  LMINF_CHECK(s > 1.0, "zeta(", s, ") diverges");
  // sum_{k<N} k^-s + N^{1-s}/(s-1) + N^-s/2 + Euler-Maclaurin terms B_2j/(2j)! s(s+1)..(s+2j-2) N^{-s-2j+1}
  const int N = 20;
  double sum = 0;
  for (int k = 1; k < N; ++k) sum += std::pow(k, -s);
  const double n = N;
  sum += std::pow(n, 1 - s) / (s - 1) + 0.5 * std::pow(n, -s);
  static const double b[] = {1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66};  // B_2 .. B_10
  double rising = s, fact = 2;  // s(s+1)...(s+2j-2), (2j)!
  for (int j = 1; j <= 5; ++j) {
    sum += b[j - 1] / fact * rising * std::pow(n, -s - 2 * j + 1);
    rising *= (s + 2 * j - 1) * (s + 2 * j);
    fact *= (2 * j + 1) * (2 * j + 2);
  }
  return sum;
}

std::vector<int64_t> zipf_counts(int64_t num_words, int64_t vocab, double alpha) {
  const double z = riemann_zeta(alpha);
  std::vector<int64_t> c;
  for (int64_t k = 1; k <= vocab; ++k)
    c.push_back(static_cast<int64_t>(static_cast<double>(num_words) * std::pow(static_cast<double>(k), -alpha) / z));
  return c;
}

std::string uuid4_text(uint64_t hi, uint64_t lo) {
  hi = (hi & ~0xF000ULL) | 0x4000ULL;                         // version 4
  lo = (lo & ~(0xC000ULL << 48)) | (0x8000ULL << 48);         // RFC 4122 variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx", static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xFFFF), static_cast<unsigned long long>(hi & 0xFFFF),
                static_cast<unsigned long long>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

// ---- layouts ------------------------------------------------------------------------------------

using Ids = std::vector<int64_t>;

struct RulerPromptBuilder::Cache {
  std::unordered_map<std::string, Ids> pieces;  // part(text, false) of repeated texts
};

struct RulerPromptBuilder::Layout {
  struct Needle {
    std::string text;
    Ids ids;
    double depth = 0;
  };
  Ids head;                  // BOS (when used) and the text before the context
  Ids tail;                  // the text after it, the answer prefix included
  std::vector<Needle> needles;  // in order of depth
  // The haystack units for F tokens: together at least F tokens (the last is cut).
  std::function<std::vector<Ids>(int64_t F)> units;
  std::vector<std::string> references;
  std::string query;
  std::string task;                         // for messages
  std::string length_key = "task.lengths";  // the key to change when the length is too short
  int64_t min_haystack = 0;                 // haystack tokens the units need (qa: the gold documents)
  int64_t fixed() const {
    int64_t n = static_cast<int64_t>(head.size() + tail.size());
    for (const auto& x : needles) n += static_cast<int64_t>(x.ids.size());
    return n;
  }
};

namespace {

const char* kNoise = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) s.replace(at, from.size(), to);
  return s;
}

// A template's text before and after {context}, its other fields filled.
std::pair<std::string, std::string> split_template(const std::string& tmpl,
                                                   std::map<std::string, std::string> fields) {
  const size_t at = tmpl.find("{context}");
  LMINF_CHECK(at != std::string::npos, "template without {context}");
  fields.erase("context");
  return {fill_template(tmpl.substr(0, at), fields, "ruler template"),
          fill_template(tmpl.substr(at + 9), fields, "ruler template")};
}

// Depths of `n` needles: distinct points of the grid 0, 1/(P-1), ..., 1, in the order drawn.
std::vector<double> draw_depths(SampleRng& rng, int64_t n, int64_t points, const std::string& task) {
  if (n > points)
    fail("ruler: task ", task, " places ", n, " needles but task.depth_points is ", points, " (use >= ", n, ")");
  std::vector<double> d;
  for (int64_t i : rng.distinct(points, n))
    d.push_back(points > 1 ? static_cast<double>(i) / static_cast<double>(points - 1) : 0.5);
  return d;
}

std::string join_query(const std::vector<std::string>& q) {
  if (q.size() == 1) return q[0];
  std::string s;
  for (size_t i = 0; i + 1 < q.size(); ++i) s += (i ? ", " : "") + q[i];
  return s + ", and " + q.back();
}

}  // namespace

RulerPromptBuilder::RulerPromptBuilder(const Tokenizer& tok, RulerOptions opts, const RulerResources& res)
    : pieces_(tok), opts_(opts), res_(res), cache_(std::make_unique<Cache>()) {
  if (opts_.bos && tok.bos_id() < 0) fail("ruler: ", tok.description(), " has no BOS token (set task.bos: false)");
}

RulerPromptBuilder::~RulerPromptBuilder() = default;

namespace {

using Layout = RulerPromptBuilder::Layout;
using Units = std::vector<Ids>;

const char* kNiahTemplate =
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will "
    "quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for "
    "{query} mentioned in the provided text? The special magic {type_needle_v} for {query} mentioned in the "
    "provided text are";
const char* kVtTemplate =
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: "
    "Find all variables that are assigned the value {query} in the text above. Answer: According to the chain(s) "
    "of variable assignment in the text above, {num_v} variables are assigned the value {query}, they are: ";
const char* kCweTemplate =
    "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones "
    "that appear most often.\n{context}\nQuestion: What are the {num_cw} most common words in the above list? "
    "Answer: The top {num_cw} words that appear most often in the list are:";
const char* kFweTemplate =
    "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
    "appeared coded words.{context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. "
    "What are the three most frequently appeared words in the above coded text? Answer: According to the coded "
    "text above, the three most frequently appeared words are:";
const char* kQaTemplate =
    "Answer the question based on the given documents. Only give me the answer and do not output any other "
    "words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given "
    "documents. Only give me the answer and do not output any other words.\n\nQuestion: {query} Answer:";

std::string numbered(const std::vector<std::string>& words) {
  std::string s;
  for (size_t i = 0; i < words.size(); ++i) s += (i ? " " : "") + std::to_string(i + 1) + ". " + words[i];
  return s;
}

// The generators of one build: the tokenizer's pieces, the options, the resources.
struct Gen {
  const PromptPieces& pieces;
  const RulerOptions& opts;
  const RulerResources& res;
  RulerPromptBuilder::Cache& cache;

  const Ids& piece(const std::string& text) const {
    auto it = cache.pieces.find(text);
    if (it == cache.pieces.end()) it = cache.pieces.emplace(text, pieces.part(text, false)).first;
    return it->second;
  }
  Ids head_ids(const std::string& text, bool bos) const {
    Ids ids;
    if (bos) ids.push_back(pieces.tokenizer().bos_id());
    const Ids t = pieces.part(text, true);
    ids.insert(ids.end(), t.begin(), t.end());
    return ids;
  }
  const std::vector<std::string>& words() const {
    if (res.words.size() < 2) fail("ruler: the word list (task.words_file) holds fewer than 2 words");
    return res.words;
  }
  std::string random_of(const std::string& type, SampleRng& rng) const {
    if (type == "numbers") return std::to_string(rng.in_range(1000000, 9999999));  // 7 digits
    if (type == "uuids") {
      const uint64_t hi = rng.next();
      return uuid4_text(hi, rng.next());
    }
    const auto& w = words();
    const std::string a = w[rng.below(w.size())];
    return a + "-" + w[rng.below(w.size())];
  }
  // Units unit(0), unit(1), ... until they hold F tokens.
  static std::function<Units(int64_t)> repeated(std::function<Ids(int64_t)> unit) {
    return [unit](int64_t F) {
      Units out;
      for (int64_t k = 0, n = 0; n < F; ++k) {
        out.push_back(unit(k));
        LMINF_CHECK(!out.back().empty(), "an empty haystack unit");
        n += static_cast<int64_t>(out.back().size());
      }
      return out;
    };
  }
  std::function<Units(int64_t)> niah_haystack(const RulerTaskDef& t, uint64_t seed) const;
  Layout niah(const RulerTaskDef& t, SampleRng& rng, uint64_t seed) const;
  Layout vt(const RulerTaskDef& t, SampleRng& rng, bool example) const;
  Layout cwe(const RulerTaskDef& t, SampleRng& rng, int64_t length) const;
  Layout fwe(const RulerTaskDef& t, SampleRng& rng, int64_t length, int64_t gen) const;
  Layout qa(const RulerTaskDef& t, SampleRng& rng, int64_t sample) const;
};

std::function<Units(int64_t)> Gen::niah_haystack(const RulerTaskDef& t, uint64_t seed) const {
  if (t.haystack == "noise") {
    const Ids unit = piece(std::string(kNoise) + "\n");
    return repeated([unit](int64_t) { return unit; });
  }
  if (t.haystack == "text") {
    if (res.haystack_words.empty()) fail("ruler: task ", t.name, " needs the text haystack (task.haystack)");
    return repeated([this](int64_t k) { return piece(res.haystack_words[static_cast<size_t>(k) % res.haystack_words.size()]); });
  }
  // Distractor needles with random keys and values (RULER's type_haystack: needle).
  return repeated([this, t, seed](int64_t k) {
    SampleRng r(seed, {static_cast<uint64_t>(k), 0x4E4545444C45ULL});
    const std::string key = random_of(t.key_type, r);
    return pieces.part("One of the special magic " + t.value_type + " for " + key + " is: " + random_of(t.value_type, r) +
                           ".\n",
                       false);
  });
}

Layout Gen::niah(const RulerTaskDef& t, SampleRng& rng, uint64_t seed) const {
  Layout L;
  const int64_t nk = std::max(t.num_k, t.num_q);
  std::vector<std::string> keys;
  for (std::set<std::string> seen; static_cast<int64_t>(keys.size()) < nk;) {
    std::string k = random_of(t.key_type, rng);
    if (seen.insert(k).second) keys.push_back(std::move(k));
  }
  std::vector<std::vector<std::string>> values(static_cast<size_t>(nk));
  std::vector<std::string> texts;
  const std::string sep = t.haystack == "text" ? "" : "\n";
  for (size_t k = 0; k < keys.size(); ++k)
    for (int64_t v = 0; v < t.num_v; ++v) {
      values[k].push_back(random_of(t.value_type, rng));
      texts.push_back("One of the special magic " + t.value_type + " for " + keys[k] + " is: " + values[k].back() + "." + sep);
    }
  rng.shuffle(texts);
  std::vector<double> depths = draw_depths(rng, static_cast<int64_t>(texts.size()), opts.depth_points, t.name);
  std::sort(depths.begin(), depths.end());
  for (size_t i = 0; i < texts.size(); ++i) L.needles.push_back({texts[i], pieces.part(texts[i], false), depths[i]});
  std::vector<std::string> queries;
  for (int64_t i : rng.distinct(nk, t.num_q)) {
    queries.push_back(keys[static_cast<size_t>(i)]);
    for (const auto& v : values[static_cast<size_t>(i)]) L.references.push_back(v);
  }
  L.query = join_query(queries);
  std::string tmpl = kNiahTemplate, type = t.value_type;
  if (t.num_q * t.num_v == 1) {  // RULER's singular wording
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"Some", "A"}, {"are all", "is"}, {"are", "is"}, {"answers", "answer"}})
      tmpl = replace_all(tmpl, from, to);
    type.pop_back();
  }
  const auto [head, tail] = split_template(tmpl, {{"type_needle_v", type}, {"query", L.query}});
  L.head = head_ids(head, opts.bos);
  L.tail = pieces.part(tail, false);
  L.units = niah_haystack(t, seed);
  return L;
}

// The prompt of layout L at `length` with room for `gen` tokens: the units cut after exactly F
// haystack tokens, each needle at the unit boundary nearest to round(depth * F).
RulerPrompt assemble(const Layout& L, int64_t length, int64_t gen, const std::string& tokenizer) {
  const int64_t need = L.fixed() + L.min_haystack + gen;
  if (length < need)
    fail("ruler: task ", L.task, ": ", L.length_key, " = ", length, " tokens cannot hold the template",
         L.needles.empty() ? "" : ", the needles", L.min_haystack ? ", the gold documents" : "", " and the ", gen,
         " tokens to generate (", need, " tokens with ", tokenizer, "); use ", L.length_key, " >= ", need,
         L.length_key == "task.lengths" ? " or leave the task out of task.tasks" : "");
  RulerPrompt p;
  p.references = L.references;
  p.query = L.query;
  const int64_t F = length - L.fixed() - gen;
  const Units units = L.units(F);
  std::vector<int64_t> bounds;  // haystack tokens before each unit that starts before F, then F
  int64_t acc = 0;
  for (const auto& u : units) {
    if (acc >= F) break;
    bounds.push_back(acc);
    acc += static_cast<int64_t>(u.size());
  }
  LMINF_CHECK(acc >= F, "haystack units hold ", acc, " of ", F, " tokens");
  bounds.push_back(F);
  p.ids = L.head;
  p.haystack_start = static_cast<int64_t>(p.ids.size());
  p.haystack_tokens = F;
  size_t ni = 0;
  auto nearest = [&](double depth) {
    const auto target = static_cast<int64_t>(std::llround(depth * static_cast<double>(F)));
    auto it = std::lower_bound(bounds.begin(), bounds.end(), target);
    if (it == bounds.end()) return bounds.back();
    if (it != bounds.begin() && target - *(it - 1) <= *it - target) --it;
    return *it;
  };
  for (size_t j = 0; j < bounds.size(); ++j) {
    for (; ni < L.needles.size() && nearest(L.needles[ni].depth) == bounds[j]; ++ni) {
      const auto& n = L.needles[ni];
      p.needle_starts.push_back(static_cast<int64_t>(p.ids.size()));
      p.needle_tokens.push_back(static_cast<int64_t>(n.ids.size()));
      p.needle_offsets.push_back(bounds[j]);
      p.needle_depths.push_back(n.depth);
      p.needles.push_back(n.text);
      p.ids.insert(p.ids.end(), n.ids.begin(), n.ids.end());
    }
    if (j + 1 == bounds.size()) break;
    const auto take = std::min<int64_t>(static_cast<int64_t>(units[j].size()), F - bounds[j]);
    p.ids.insert(p.ids.end(), units[j].begin(), units[j].begin() + take);
  }
  LMINF_CHECK(ni == L.needles.size(), "needles left over");
  p.ids.insert(p.ids.end(), L.tail.begin(), L.tail.end());
  LMINF_CHECK(static_cast<int64_t>(p.ids.size()) == length - gen, "prompt of ", p.ids.size(), " tokens");
  return p;
}

Layout Gen::vt(const RulerTaskDef& t, SampleRng& rng, bool example) const {
  Layout L;
  const int64_t chains = opts.vt_num_chains, per = opts.vt_num_hops + 1;
  std::vector<std::string> vars;
  for (std::set<std::string> seen; static_cast<int64_t>(vars.size()) < chains * per;) {
    std::string v;
    for (int i = 0; i < 5; ++i) v += static_cast<char>('A' + rng.below(26));
    if (seen.insert(v).second) vars.push_back(std::move(v));
  }
  const std::vector<double> grid = draw_depths(rng, chains * per, opts.depth_points, t.name);
  for (int64_t c = 0; c < chains; ++c) {
    const auto value = std::to_string(rng.in_range(10000, 99999));
    if (c == 0) L.query = value;
    std::vector<double> d(grid.begin() + c * per, grid.begin() + (c + 1) * per);
    std::sort(d.begin(), d.end());  // a chain's assignments appear in order
    for (int64_t j = 0; j < per; ++j) {
      const std::string& v = vars[static_cast<size_t>(c * per + j)];
      const std::string text = "VAR " + v + " = " + (j == 0 ? value : "VAR " + vars[static_cast<size_t>(c * per + j - 1)]) + "\n";
      L.needles.push_back({text, pieces.part(text, false), d[static_cast<size_t>(j)]});
    }
  }
  std::stable_sort(L.needles.begin(), L.needles.end(), [](const auto& a, const auto& b) { return a.depth < b.depth; });
  L.references.assign(vars.begin(), vars.begin() + per);
  const auto [head, tail] = split_template(kVtTemplate, {{"query", L.query}, {"num_v", std::to_string(per)}});
  L.tail = pieces.part(tail, false);
  const Ids noise = piece(std::string(kNoise) + "\n");
  L.units = repeated([noise](int64_t) { return noise; });
  L.task = t.name;
  if (example || opts.vt_example_length == 0) {
    L.head = head_ids(head, opts.bos && !example);
    return L;
  }
  // RULER's one-shot example: a whole vt prompt of vt_example_length tokens, its answer, a newline.
  Layout ex = vt(t, rng, true);
  ex.length_key = "task.vt_example_length";
  L.head = opts.bos ? Ids{pieces.tokenizer().bos_id()} : Ids{};
  const RulerPrompt e = assemble(ex, opts.vt_example_length, 0, pieces.tokenizer().description());
  L.head.insert(L.head.end(), e.ids.begin(), e.ids.end());
  std::string answer;
  for (const auto& v : ex.references) answer += (answer.empty() ? "" : " ") + v;
  for (const Ids& x : {pieces.part(answer + "\n", false), pieces.part(head, false)}) L.head.insert(L.head.end(), x.begin(), x.end());
  return L;
}

Layout Gen::cwe(const RulerTaskDef& t, SampleRng& rng, int64_t length) const {
  Layout L;
  L.task = t.name;
  // RULER: below 4096 tokens the list repeats common words 6 times and the others once, and the
  // example has 20 words (3 / 1); else freq_cw / freq_ucw and an example of 40 words (10 / 3).
  const bool small = length < opts.cwe_short_below;
  const int64_t ncw = opts.cwe_num_cw, fc = small ? 6 : opts.cwe_freq_cw, fu = small ? 1 : opts.cwe_freq_ucw;
  const int64_t ex_n = std::max<int64_t>(small ? 20 : 40, ncw), ex_fc = small ? 3 : 10, ex_fu = small ? 1 : 3;
  const std::vector<std::string>* w = &words();
  SampleRng* r = &rng;
  auto draw = std::make_shared<DistinctDraws>(rng, static_cast<int64_t>(w->size()));
  auto take = [w, draw]() {
    if (draw->exhausted()) fail("ruler: task cwe needs more words than task.words_file holds (", w->size(), ")");
    return (*w)[static_cast<size_t>(draw->next())];
  };
  auto list = [r](const std::vector<std::string>& common, const std::vector<std::string>& rare, int64_t a, int64_t b) {
    std::vector<std::string> out;
    for (int64_t i = 0; i < a; ++i) out.insert(out.end(), common.begin(), common.end());
    for (int64_t i = 0; i < b; ++i) out.insert(out.end(), rare.begin(), rare.end());
    r->shuffle(out);
    return out;
  };
  std::vector<std::string> ex_common, ex_rare;
  for (int64_t i = 0; i < ex_n; ++i) (i < ncw ? ex_common : ex_rare).push_back(take());
  const auto [head, tail] = split_template(kCweTemplate, {{"num_cw", std::to_string(ncw)}});
  const std::string example = head + numbered(list(ex_common, ex_rare, ex_fc, ex_fu)) + tail + " " + numbered(ex_common);
  for (int64_t i = 0; i < ncw; ++i) L.references.push_back(take());
  L.head = head_ids(example + "\n" + head, opts.bos);
  L.tail = pieces.part(tail, false);
  L.units = [this, take, list, common = L.references, fc, fu](int64_t F) {
    // the fewest rare words whose list (each item "i." and its word, as separate pieces) holds F tokens
    std::vector<std::string> rare;
    int64_t words_tokens = 0, labels_tokens = 0, items = 0;
    for (const auto& c : common) words_tokens += fc * static_cast<int64_t>(piece(c).size());
    auto grow = [&](int64_t n) {
      for (; items < n; ++items) labels_tokens += static_cast<int64_t>(piece(std::to_string(items + 1) + ".").size());
    };
    grow(fc * static_cast<int64_t>(common.size()));
    while (words_tokens + labels_tokens < F) {
      rare.push_back(take());
      words_tokens += fu * static_cast<int64_t>(piece(rare.back()).size());
      grow(items + fu);
    }
    Units out;
    const auto order = list(common, rare, fc, fu);
    for (size_t i = 0; i < order.size(); ++i) {
      Ids u = piece(std::to_string(i + 1) + ".");
      const Ids& x = piece(order[i]);
      u.insert(u.end(), x.begin(), x.end());
      out.push_back(std::move(u));
    }
    return out;
  };
  return L;
}

Layout Gen::fwe(const RulerTaskDef& t, SampleRng& rng, int64_t length, int64_t gen) const {
  Layout L;
  L.task = t.name;
  const int64_t V = opts.fwe_vocab_size > 0 ? opts.fwe_vocab_size : std::max<int64_t>(4, (length - gen) / 50);
  std::vector<std::string> vocab;
  for (std::set<std::string> seen; static_cast<int64_t>(vocab.size()) < V;) {
    std::string v;
    for (int i = 0; i < 6; ++i) v += static_cast<char>('a' + rng.below(26));
    if (seen.insert(v).second) vocab.push_back(std::move(v));
  }
  vocab[0] = "...";  // RULER: the most frequent "word" is noise
  L.references.assign(vocab.begin() + 1, vocab.begin() + 4);
  const auto [head, tail] = split_template(kFweTemplate, {});
  L.head = head_ids(head, opts.bos);
  L.tail = pieces.part(tail, false);
  L.units = [this, r = &rng, vocab, alpha = opts.fwe_alpha](int64_t F) {
    auto tokens = [&](int64_t n) {
      const auto c = zipf_counts(n, static_cast<int64_t>(vocab.size()), alpha);
      int64_t sum = 0;
      for (size_t k = 0; k < c.size(); ++k) sum += c[k] * static_cast<int64_t>(piece(vocab[k]).size());
      return sum;
    };
    int64_t lo = 0, hi = 1;  // the fewest words whose Zipf counts hold F tokens: in (lo, hi]
    while (tokens(hi) < F) {
      lo = hi;
      hi *= 2;
    }
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (tokens(mid) < F) lo = mid;
      else hi = mid;
    }
    const auto c = zipf_counts(F > 0 ? hi : 0, static_cast<int64_t>(vocab.size()), alpha);
    std::vector<size_t> order;
    for (size_t k = 0; k < c.size(); ++k) order.insert(order.end(), static_cast<size_t>(c[k]), k);
    r->shuffle(order);
    Units out;
    for (size_t k : order) out.push_back(piece(vocab[k]));
    return out;
  };
  return L;
}

Layout Gen::qa(const RulerTaskDef& t, SampleRng& rng, int64_t sample) const {
  Layout L;
  L.task = t.name;
  const QaSet* set = t.dataset == "squad" ? res.squad.get() : res.hotpotqa.get();
  if (!set) fail("ruler: task ", t.name, " needs task.", t.dataset, " (a ", t.dataset, " JSON file)");
  const QaItem& q = set->items[static_cast<size_t>(sample) % set->items.size()];
  L.query = q.question;
  L.references = q.answers;
  const auto [head, tail] = split_template(kQaTemplate, {{"query", q.question}});
  L.head = head_ids(head, opts.bos);
  L.tail = pieces.part(tail, false);
  auto header = [this](size_t p) -> const Ids& { return piece("Document " + std::to_string(p) + ":\n"); };
  auto body = [this, set](int64_t d) -> const Ids& { return piece(set->docs[static_cast<size_t>(d)] + "\n\n"); };
  for (size_t i = 0; i < q.gold.size(); ++i)
    L.min_haystack += static_cast<int64_t>(header(i + 1).size() + body(q.gold[i]).size());
  L.units = [r = &rng, q = &q, set, header, body, min = L.min_haystack, name = t.name](int64_t F) {
    // the gold documents, then the article's other paragraphs, then random others, while whole ones
    // fit; the next one (cut by the assembly) fills the rest
    std::vector<int64_t> chosen = q->gold, related = q->related;
    r->shuffle(related);
    std::set<int64_t> used(chosen.begin(), chosen.end());
    used.insert(related.begin(), related.end());
    DistinctDraws others(*r, static_cast<int64_t>(set->docs.size()));
    size_t ri = 0;
    auto next = [&]() -> int64_t {
      if (ri < related.size()) return related[ri++];
      while (!others.exhausted()) {
        const int64_t d = others.next();
        if (!used.count(d)) return d;
      }
      return -1;
    };
    int64_t total = min, partial = -1;
    while (total < F) {
      const int64_t d = next();
      if (d < 0) fail("ruler: task ", name, ": the ", set->docs.size(), " documents of its data set do not fill ", F, " tokens");
      const auto n = static_cast<int64_t>(header(chosen.size() + 1).size() + body(d).size());
      if (total + n > F) {
        partial = d;
        break;
      }
      chosen.push_back(d);
      total += n;
    }
    r->shuffle(chosen);
    if (partial >= 0) chosen.push_back(partial);
    Units out;
    for (size_t p = 0; p < chosen.size(); ++p) {
      Ids u = header(p + 1);
      u.insert(u.end(), body(chosen[p]).begin(), body(chosen[p]).end());
      out.push_back(std::move(u));
    }
    return out;
  };
  return L;
}

}  // namespace

namespace {

Layout make_layout(const Gen& g, const RulerTaskDef& task, SampleRng& rng, int64_t length, int64_t gen, int64_t sample,
                   uint64_t seed) {
  Layout L;
  switch (task.kind) {
    case RulerKind::kNiah: L = g.niah(task, rng, seed); break;
    case RulerKind::kVt: L = g.vt(task, rng, false); break;
    case RulerKind::kCwe: L = g.cwe(task, rng, length); break;
    case RulerKind::kFwe: L = g.fwe(task, rng, length, gen); break;
    case RulerKind::kQa: L = g.qa(task, rng, sample); break;
  }
  L.task = task.name;
  return L;
}

}  // namespace

RulerPrompt RulerPromptBuilder::build(const RulerTaskDef& task, int64_t length, int64_t gen, int64_t sample,
                                      uint64_t seed) const {
  const Gen g{pieces_, opts_, res_, *cache_};
  SampleRng rng(seed);  // the layout's units draw from it: it outlives them
  const Layout L = make_layout(g, task, rng, length, gen, sample, seed);
  return assemble(L, length, gen, pieces_.tokenizer().description());
}

int64_t RulerPromptBuilder::shortest_length(const RulerTaskDef& task, int64_t length, int64_t gen, int64_t sample,
                                            uint64_t seed) const {
  const Gen g{pieces_, opts_, res_, *cache_};
  SampleRng rng(seed);
  const Layout L = make_layout(g, task, rng, length, gen, sample, seed);
  return L.fixed() + L.min_haystack + gen;
}

}  // namespace lminf
