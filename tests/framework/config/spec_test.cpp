// Tests of the experiment-spec machinery: reading (defaults, types, nesting, raw sections), error
// reports (file:line:col, --set origins, all problems at once), overrides, writing and help text.
#include "framework/config/spec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace lminf {
namespace {

// ---- test specs -------------------------------------------------------------------------------

struct TestAttention {
  std::string variant = "vanilla";
  int64_t block_size = 256;
  int64_t local_branch = 4096;
  std::optional<int64_t> limit_distance;
  template <class V>
  void visit(V& v) {
    v("variant", variant, "attention variant", Choices{"vanilla", "lambda"});
    v("block_size", block_size, "query/key block size of the kernel", Min{1});
    v("local_branch", local_branch, "tokens in the local window", Min{1}, Max{1 << 20});
    v("limit_distance", limit_distance, "distance cap; null = none");
  }
};

struct TestModel {
  std::string path;
  std::string dtype = "bfloat16";
  template <class V>
  void visit(V& v) {
    v("path", path, "Hugging Face model folder", Required{});
    v("dtype", dtype, "weight dtype", Choices{"float32", "bfloat16"});
  }
};

struct TestExperiment {
  std::string name;
  int64_t seed = 0;
  TestModel model;
  TestAttention attention;
  YAML::Node task;
  template <class V>
  void visit(V& v) {
    v("name", name, "experiment name", Required{});
    v("seed", seed, "random seed", Min{0}, Max{1000});
    v("model", model, "the checkpoint");
    v("attention", attention, "attention options");
    v("task", task, "task section (keys depend on task.type)");
  }
};

// Every supported member type.
struct AllTypes {
  bool flag = false;
  int64_t count = 3;
  int small = 2;
  double rate = 0.5;
  std::string label = "x";
  std::optional<int64_t> opt_int;
  std::optional<double> opt_num = 1.5;
  std::optional<std::string> opt_str;
  std::vector<int64_t> ints{1, 2};
  std::vector<double> nums;
  std::vector<std::string> words{"a"};
  TestAttention inner;
  YAML::Node raw;
  template <class V>
  void visit(V& v) {
    v("flag", flag, "a bool");
    v("count", count, "an int64");
    v("small", small, "an int");
    v("rate", rate, "a double", Min{0.0}, Max{1.0});
    v("label", label, "a string");
    v("opt_int", opt_int, "optional int");
    v("opt_num", opt_num, "optional double");
    v("opt_str", opt_str, "optional string", Choices{"p", "q"});
    v("ints", ints, "list of ints", Min{0});
    v("nums", nums, "list of doubles");
    v("words", words, "list of strings");
    v("inner", inner, "nested struct");
    v("raw", raw, "raw yaml");
  }
};

SpecSource no_file() { return SpecSource{}; }

// The message of the Error that `fn` throws ("" if it throws none).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::size_t count_lines(const std::string& s) {
  std::size_t n = s.empty() ? 0 : 1;
  for (char c : s) n += c == '\n';
  return n;
}

// A fresh folder under the system temp dir, removed at the end of the test.
class TempFolder {
 public:
  TempFolder() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lminf_spec_XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// ---- reading ----------------------------------------------------------------------------------

TEST(SpecRead, DefaultsKeptForMissingKeys) {
  TestAttention s;
  s.block_size = 77;  // defaults are whatever `out` holds; missing keys leave them alone
  read_spec(YAML::Load("variant: lambda"), s, no_file());
  EXPECT_EQ(s.variant, "lambda");
  EXPECT_EQ(s.block_size, 77);
  EXPECT_EQ(s.local_branch, 4096);
  EXPECT_FALSE(s.limit_distance.has_value());

  TestAttention from_null;
  read_spec(YAML::Load("~"), from_null, no_file());  // a null document means all defaults
  EXPECT_TRUE(spec_equal(from_null, TestAttention{}));
}

TEST(SpecRead, EveryTypeParsed) {
  const char* text = R"(
flag: true
count: -12
small: +7
rate: 0.25
label: "hello world"
opt_int: 5
opt_num: null
opt_str: q
ints: [0, 10, 20]
nums: [1, 2.5, -3e2, .inf]
words: [a, "b c"]
inner: {variant: lambda, limit_distance: 64}
raw: {type: niah, depth: [0.1, 0.5]}
)";
  AllTypes s;
  read_spec(YAML::Load(text), s, no_file());
  EXPECT_TRUE(s.flag);
  EXPECT_EQ(s.count, -12);
  EXPECT_EQ(s.small, 7);
  EXPECT_DOUBLE_EQ(s.rate, 0.25);
  EXPECT_EQ(s.label, "hello world");
  EXPECT_EQ(s.opt_int, std::optional<int64_t>(5));
  EXPECT_FALSE(s.opt_num.has_value());  // explicit null clears a non-empty default
  EXPECT_EQ(s.opt_str, std::optional<std::string>("q"));
  EXPECT_EQ(s.ints, (std::vector<int64_t>{0, 10, 20}));
  ASSERT_EQ(s.nums.size(), 4u);
  EXPECT_DOUBLE_EQ(s.nums[1], 2.5);
  EXPECT_DOUBLE_EQ(s.nums[2], -300.0);
  EXPECT_TRUE(std::isinf(s.nums[3]));
  EXPECT_EQ(s.words, (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(s.inner.variant, "lambda");
  EXPECT_EQ(s.inner.limit_distance, std::optional<int64_t>(64));
  EXPECT_EQ(s.inner.block_size, 256);
  EXPECT_EQ(s.raw["type"].as<std::string>(), "niah");
  EXPECT_EQ(s.raw["depth"].size(), 2u);
}

TEST(SpecRead, ScalarTypesAreCheckedByConversion) {
  // yaml-cpp keeps every scalar as text; the type is decided by what the text converts to.
  AllTypes s;
  read_spec(YAML::Load("count: '12'\nrate: 1\nlabel: 12\nflag: FALSE"), s, no_file());
  EXPECT_EQ(s.count, 12);
  EXPECT_DOUBLE_EQ(s.rate, 1.0);  // an integer is a number
  EXPECT_EQ(s.label, "12");
  EXPECT_FALSE(s.flag);

  const std::string msg = error_of([&] {
    AllTypes t;
    read_spec(YAML::Load("count: 1.5\nflag: yes\nrate: abc\nlabel: [1]\nsmall: 3000000000\n"
                         "opt_int: x\nints: 3\nnums:\nwords: [a, [b]]\n"),
              t, no_file());
  });
  EXPECT_NE(msg.find("count: expected an integer, got \"1.5\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("flag: expected true or false, got \"yes\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("rate: expected a number, got \"abc\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("label: expected a string, got a list"), std::string::npos) << msg;
  EXPECT_NE(msg.find("small: integer 3000000000 is out of range (32-bit)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("opt_int: expected null or an integer, got \"x\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("ints: expected a list of integers, got \"3\" (write [3]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nums: expected a list of numbers, got null (write [] for an empty list)"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("words[1]: expected a string, got a list"), std::string::npos) << msg;
  EXPECT_EQ(count_lines(msg), 9u) << msg;
}

TEST(SpecRead, NestedSections) {
  TestExperiment s;
  read_spec(YAML::Load("name: e1\nmodel: {path: /m}\nattention:\n  block_size: 64\n"), s, no_file());
  EXPECT_EQ(s.model.path, "/m");
  EXPECT_EQ(s.model.dtype, "bfloat16");
  EXPECT_EQ(s.attention.block_size, 64);
  EXPECT_EQ(s.attention.variant, "vanilla");

  // a section written as `attention:` (null) means all defaults
  TestExperiment t;
  read_spec(YAML::Load("name: e2\nmodel: {path: /m}\nattention:\n"), t, no_file());
  EXPECT_TRUE(spec_equal(t.attention, TestAttention{}));

  // a section that is not a map is an error at that section
  const std::string msg = error_of([] {
    TestExperiment u;
    read_spec(YAML::Load("name: e3\nmodel: {path: /m}\nattention: 5\n"), u, SpecSource{"e.yaml", {}});
  });
  EXPECT_EQ(msg, "e.yaml:3:12: attention: expected a map, got \"5\"");
}

TEST(SpecRead, RawNodeKeptAsWritten) {
  TestExperiment s;
  read_spec(YAML::Load("name: e\nmodel: {path: /m}\ntask:\n  type: niah\n  lengths: [1024, 2048]\n"), s,
            no_file());
  ASSERT_TRUE(s.task.IsMap());
  EXPECT_EQ(s.task["type"].as<std::string>(), "niah");
  EXPECT_EQ(s.task["lengths"][1].as<int>(), 2048);
  EXPECT_EQ(s.task["lengths"].Mark().line, 4);  // marks kept, for the task's own validation later

  // unknown keys inside a raw section are not the spec's business
  TestExperiment t;
  EXPECT_NO_THROW(read_spec(YAML::Load("name: e\nmodel: {path: /m}\ntask: {anything: 1}"), t, no_file()));
}

TEST(SpecRead, UnknownKeySuggestsClosestAndListsValidKeys) {
  const std::string msg = error_of([] {
    TestAttention s;
    read_spec(YAML::Load("variant: vanilla\nlocal_brnch: 2048\n"), s, SpecSource{"a.yaml", {}}, "attention");
  });
  EXPECT_EQ(msg,
            "a.yaml:2:1: attention.local_brnch: unknown key \"local_brnch\" (did you mean \"local_branch\"? "
            "valid keys: variant, block_size, local_branch, limit_distance)");

  const std::string far = error_of([] {
    TestAttention s;
    read_spec(YAML::Load("zzzzzz: 1"), s, no_file());
  });
  EXPECT_EQ(far.find("did you mean"), std::string::npos) << far;
  EXPECT_NE(far.find("unknown key \"zzzzzz\" (valid keys: variant, block_size"), std::string::npos) << far;
}

TEST(SpecRead, WrongTypeNamesFileLineAndColumn) {
  TempFolder dir;
  const std::string file = dir.write("x.yaml",
                                     "name: run\n"            // line 1
                                     "model:\n"               // line 2
                                     "  path: /models/m\n"    // line 3
                                     "attention:\n"           // line 4
                                     "  variant: vanilla\n"   // line 5
                                     "  block_size: big\n");  // line 6, value at column 15
  const YAML::Node root = load_yaml_file(file);
  const std::string msg = error_of([&] {
    TestExperiment s;
    read_spec(root, s, SpecSource{file, {}});
  });
  EXPECT_EQ(msg, file + ":6:15: attention.block_size: expected an integer, got \"big\"");
}

TEST(SpecRead, AllProblemsReportedTogether) {
  const std::string msg = error_of([] {
    TestExperiment s;
    read_spec(YAML::Load("seed: -1\n"                 // line 1: below Min
                         "model:\n"                   // line 2: path missing
                         "  dtype: fp8\n"             // line 3: not a choice
                         "attention:\n"               //
                         "  variant: lamda\n"         // line 5: not a choice, with suggestion
                         "  block_size: 0\n"          // line 6: below Min
                         "  local_branch: 9999999\n"  // line 7: above Max
                         "  extra: 1\n"),             // line 8: unknown
              s, SpecSource{"c.yaml", {}});
  });
  // name missing + 7 more, each on its own line, in visit order
  EXPECT_EQ(count_lines(msg), 8u) << msg;
  EXPECT_NE(msg.find("c.yaml:1:1: name: missing required key (experiment name)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("c.yaml:1:7: seed: must be >= 0, got -1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("c.yaml:3:3: model.path: missing required key (Hugging Face model folder)"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("c.yaml:3:10: model.dtype: \"fp8\" is not one of: float32, bfloat16"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("c.yaml:5:12: attention.variant: \"lamda\" is not one of: vanilla, lambda "
                     "(did you mean \"lambda\"?)"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("c.yaml:6:15: attention.block_size: must be >= 1, got 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("c.yaml:7:17: attention.local_branch: must be <= 1048576, got 9999999"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("c.yaml:8:3: attention.extra: unknown key \"extra\""), std::string::npos) << msg;
}

TEST(SpecRead, RequiredKeyMissingEvenWhenSectionAbsent) {
  const std::string msg = error_of([] {
    TestExperiment s;
    read_spec(YAML::Load("name: e\n"), s, SpecSource{"r.yaml", {}});
  });
  EXPECT_EQ(msg, "r.yaml:1:1: model.path: missing required key (Hugging Face model folder)");
}

TEST(SpecRead, ChoicesMinMaxOnOptionalsAndLists) {
  AllTypes ok;
  read_spec(YAML::Load("rate: 1.0\nopt_str: p\nints: [0, 5]"), ok, no_file());
  EXPECT_DOUBLE_EQ(ok.rate, 1.0);  // bounds are inclusive

  const std::string msg = error_of([] {
    AllTypes s;
    read_spec(YAML::Load("rate: 1.5\nopt_str: r\nints: [3, -1]"), s, no_file());
  });
  EXPECT_NE(msg.find("rate: must be <= 1, got 1.5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("opt_str: \"r\" is not one of: p, q"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ints[1]: must be >= 0, got -1"), std::string::npos) << msg;
  EXPECT_EQ(count_lines(msg), 3u) << msg;
}

TEST(SpecRead, ErrorLeavesOutputUnchanged) {
  TestAttention s;
  s.variant = "lambda";
  EXPECT_THROW(read_spec(YAML::Load("variant: vanilla\nblock_size: x"), s, no_file()), Error);
  EXPECT_EQ(s.variant, "lambda");
}

TEST(SpecRead, DuplicateKeyReported) {
  const std::string msg = error_of([] {
    TestAttention s;
    read_spec(YAML::Load("block_size: 1\nblock_size: 2\n"), s, SpecSource{"d.yaml", {}});
  });
  EXPECT_NE(msg.find("d.yaml:2:1: block_size: key given twice"), std::string::npos) << msg;
}

// ---- overrides --------------------------------------------------------------------------------

TEST(SpecOverride, CreatesNestedKeysAndRecordsOrigin) {
  YAML::Node root = YAML::Load("name: e\nmodel: {path: /m}\n");
  SpecSource src{"o.yaml", {}};
  apply_override(root, "attention.block_size=128", src);
  apply_override(root, "task.niah.depth=0.5", src);
  apply_override(root, "name=other", src);
  EXPECT_EQ(root["attention"]["block_size"].as<int>(), 128);
  EXPECT_DOUBLE_EQ(root["task"]["niah"]["depth"].as<double>(), 0.5);
  EXPECT_EQ(root["model"]["path"].as<std::string>(), "/m");  // untouched siblings stay
  EXPECT_EQ(src.overridden.at("attention.block_size"), "--set attention.block_size=128");
  EXPECT_EQ(src.overridden.at("name"), "--set name=other");

  TestExperiment s;
  read_spec(root, s, src);
  EXPECT_EQ(s.name, "other");
  EXPECT_EQ(s.attention.block_size, 128);
  EXPECT_EQ(s.task["niah"]["depth"].as<std::string>(), "0.5");

  // an override on an empty document builds the map
  YAML::Node empty;
  apply_override(empty, "a.b=1", src);
  EXPECT_EQ(empty["a"]["b"].as<int>(), 1);
}

TEST(SpecOverride, ValueTypes) {
  YAML::Node root = YAML::Load("attention: {limit_distance: 5}\n");
  SpecSource src;
  apply_override(root, "attention.local_branch=4096", src);
  apply_override(root, "attention.limit_distance=null", src);
  apply_override(root, "list=[1, 2]", src);
  apply_override(root, "map={a: 1}", src);
  apply_override(root, "flag=true", src);
  apply_override(root, "dtype=bfloat16", src);
  apply_override(root, "empty=", src);
  EXPECT_EQ(root["attention"]["local_branch"].as<int64_t>(), 4096);
  EXPECT_TRUE(root["attention"]["limit_distance"].IsNull());
  ASSERT_TRUE(root["list"].IsSequence());
  EXPECT_EQ(root["list"][1].as<int>(), 2);
  EXPECT_EQ(root["map"]["a"].as<int>(), 1);
  EXPECT_TRUE(root["flag"].as<bool>());
  EXPECT_EQ(root["dtype"].as<std::string>(), "bfloat16");
  EXPECT_TRUE(root["empty"].IsNull());

  AllTypes s;
  YAML::Node r2 = YAML::Load("opt_int: 3\n");
  apply_override(r2, "opt_int=null", src);
  apply_override(r2, "ints=[4, 5, 6]", src);
  read_spec(r2, s, src);
  EXPECT_FALSE(s.opt_int.has_value());
  EXPECT_EQ(s.ints, (std::vector<int64_t>{4, 5, 6}));
}

TEST(SpecOverride, MalformedAssignmentsNameTheSetText) {
  YAML::Node root = YAML::Load("name: e\nmodel: {path: /m}\n");
  SpecSource src;
  const std::string no_eq = error_of([&] { apply_override(root, "attention.block_size", src); });
  EXPECT_EQ(no_eq.rfind("--set attention.block_size: expected key.path=value", 0), 0u) << no_eq;
  const std::string no_key = error_of([&] { apply_override(root, "=5", src); });
  EXPECT_EQ(no_key.rfind("--set =5: the key before '=' is empty", 0), 0u) << no_key;
  const std::string bad_path = error_of([&] { apply_override(root, "a..b=1", src); });
  EXPECT_NE(bad_path.find("is not a dotted key path"), std::string::npos) << bad_path;
  const std::string crosses = error_of([&] { apply_override(root, "name.first=x", src); });
  EXPECT_EQ(crosses,
            "--set name.first=x: name is a value, not a map, so it has no key first (set name itself, or fix "
            "the key path)");
  EXPECT_TRUE(src.overridden.empty());  // failed overrides record nothing
}

TEST(SpecOverride, ReadProblemsPointAtTheSetText) {
  YAML::Node root = YAML::Load("name: e\nmodel: {path: /m}\nattention: {variant: vanilla}\n");
  SpecSource src{"o.yaml", {}};
  apply_override(root, "attention.block_size=x", src);
  apply_override(root, "attention.local_brnch=2048", src);
  apply_override(root, "model={dtype: float32}", src);  // replaces the section: path now missing
  const std::string msg = error_of([&] {
    TestExperiment s;
    read_spec(root, s, src);
  });
  EXPECT_NE(msg.find("--set model={dtype: float32}: model.path: missing required key"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("--set attention.block_size=x: attention.block_size: expected an integer, got \"x\""),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("--set attention.local_brnch=2048: attention.local_brnch: unknown key \"local_brnch\" "
                     "(did you mean \"local_branch\"?"),
            std::string::npos) << msg;
  EXPECT_EQ(count_lines(msg), 3u) << msg;
}

// ---- writing, equality, help ------------------------------------------------------------------

TEST(SpecWrite, CompleteInVisitOrder) {
  const YAML::Node out = write_spec(TestAttention{});
  std::vector<std::string> keys;
  for (auto it = out.begin(); it != out.end(); ++it) keys.push_back(it->first.as<std::string>());
  EXPECT_EQ(keys, (std::vector<std::string>{"variant", "block_size", "local_branch", "limit_distance"}));
  EXPECT_EQ(to_yaml_string(out),
            "variant: vanilla\n"
            "block_size: 256\n"
            "local_branch: 4096\n"
            "limit_distance: null\n");
}

TEST(SpecWrite, RoundTripThroughText) {
  AllTypes a;
  a.flag = true;
  a.count = -(int64_t{1} << 40);
  a.small = -5;
  a.rate = 0.1;  // not exactly representable: needs the shortest round-trip text
  a.label = "12";  // looks like an integer: must come back as the string "12"
  a.opt_int = 7;
  a.opt_num.reset();
  a.opt_str = "p";
  a.ints = {};
  a.nums = {1.0, 1e-300, std::nan("")};
  a.words = {"null", "", "true", "a: b"};
  a.inner.variant = "lambda";
  a.inner.limit_distance = 0;
  a.raw = YAML::Load("type: niah\nlengths: [1, 2]\nnote: '5'\n");

  const std::string text = to_yaml_string(write_spec(a));
  AllTypes b;
  ASSERT_FALSE(spec_equal(a, b));
  read_spec(YAML::Load(text), b, no_file());
  EXPECT_TRUE(spec_equal(a, b)) << text;
  EXPECT_EQ(b.label, "12");
  EXPECT_EQ(b.words, a.words);
  EXPECT_NE(text.find("opt_num: null"), std::string::npos) << text;
  EXPECT_NE(text.find("rate: 0.1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("note: \"5\""), std::string::npos) << text;  // a quoted raw scalar stays quoted

  // spec_equal looks at nested structs and raw nodes too
  AllTypes c = b;
  c.inner.block_size += 1;
  EXPECT_FALSE(spec_equal(b, c));
  AllTypes d = b;  // copies share raw nodes: replace with reset(), as `=` writes through to b
  d.raw.reset(YAML::Load("type: niah\nlengths: [1, 3]\nnote: '5'\n"));
  EXPECT_FALSE(spec_equal(b, d));
  EXPECT_EQ(b.raw["lengths"][1].as<int>(), 2);
}

TEST(SpecDescribe, OneLinePerKeyWithTypeDefaultAndHelp) {
  const std::string help = describe_spec<TestExperiment>();
  EXPECT_EQ(count_lines(help), 12u) << help;  // 5 top-level + 2 model + 4 attention, then a final newline
  auto line_with = [&](const std::string& key) {
    const auto at = help.find(key + " ");
    if (at == std::string::npos) return std::string();
    const auto begin = help.rfind('\n', at) + 1;
    return help.substr(begin, help.find('\n', at) - begin);
  };
  const std::string name = line_with("name");
  EXPECT_NE(name.find("string"), std::string::npos) << help;
  EXPECT_NE(name.find("(required)"), std::string::npos) << help;
  const std::string block = line_with("attention.block_size");
  EXPECT_EQ(block.rfind("  attention.block_size", 0), 0u) << help;  // nested: indented and prefixed
  EXPECT_NE(block.find("int"), std::string::npos) << help;
  EXPECT_NE(block.find("256"), std::string::npos) << help;
  EXPECT_NE(block.find("query/key block size of the kernel [>= 1]"), std::string::npos) << help;
  EXPECT_NE(line_with("attention.variant").find("[one of: vanilla, lambda]"), std::string::npos) << help;
  EXPECT_NE(line_with("attention.limit_distance").find("int|null  null"), std::string::npos) << help;
  EXPECT_NE(line_with("task").find("yaml"), std::string::npos) << help;

  const std::string prefixed = describe_spec<TestAttention>("attention");
  EXPECT_EQ(prefixed.rfind("attention.variant", 0), 0u) << prefixed;
}

TEST(SpecDescribe, HeadingsStandAloneAndDoNotWidenTheColumns) {
  using spec_detail::HelpRow;
  const std::string plain = spec_detail::format_help_rows({{0, "a.b", "int", "1", "help"}});
  const std::string with = spec_detail::format_help_rows(
      {{0, "# a.variant: something_with_a_long_name reads", "", "", ""}, {0, "a.b", "int", "1", "help"}});
  EXPECT_EQ(with, "# a.variant: something_with_a_long_name reads\n" + plain);
}

// Sections whose keys follow an earlier value (attention's variant): the reader's hooks, a choice
// list built at run time, and equality of specs whose field lists differ.
struct DependentKeys {
  std::string kind = "one";
  int64_t a = 1;
  int64_t b = 2;
  template <class V>
  void visit(V& v) {
    v("kind", kind, "one: reads a; two: reads a and b", Choices(std::vector<std::string>{"one", "two"}));
    v("a", a, "a");
    if (kind == "two") v("b", b, "b");
  }
};

TEST(SpecDependentKeys, ChoicesFromAListAndComparisonOfDifferentFieldLists) {
  DependentKeys one, two;
  read_spec(YAML::Load("{kind: two, b: 5}"), two, no_file());
  EXPECT_EQ(two.b, 5);
  EXPECT_FALSE(spec_equal(one, two));
  EXPECT_FALSE(spec_equal(two, one));
  DependentKeys other;
  read_spec(YAML::Load("{kind: two, b: 5}"), other, no_file());
  EXPECT_TRUE(spec_equal(two, other));
  const std::string msg = error_of([] {
    DependentKeys d;
    read_spec(YAML::Load("{kind: tow}"), d, no_file());
  });
  EXPECT_NE(msg.find("\"tow\" is not one of: one, two (did you mean \"two\"?)"), std::string::npos) << msg;
}

// ---- files and suggestions --------------------------------------------------------------------

TEST(SpecLoad, SyntaxErrorNamesFileAndLine) {
  TempFolder dir;
  const std::string file = dir.write("bad.yaml", "name: e\nmodel:\n  path: a: b\nseed: 3\n");
  const std::string msg = error_of([&] { load_yaml_file(file); });
  EXPECT_EQ(msg, file + ":3:10: YAML syntax error: illegal map value");
}

TEST(SpecLoad, MissingFileNamesPath) {
  TempFolder dir;
  const std::string file = dir.file("absent.yaml");
  const std::string msg = error_of([&] { load_yaml_file(file); });
  EXPECT_EQ(msg, file + ": no such file (check the path)");

  const std::string ok = dir.write("ok.yaml", "a: 1\n");
  EXPECT_EQ(load_yaml_file(ok)["a"].as<int>(), 1);
  EXPECT_TRUE(load_yaml_file(dir.write("empty.yaml", "")).IsNull());
}

TEST(SpecClosestMatch, PicksNearestWithinReason) {
  const std::vector<std::string> keys{"variant", "block_size", "local_branch"};
  EXPECT_EQ(closest_match("local_brnch", keys), "local_branch");
  EXPECT_EQ(closest_match("varaint", keys), "variant");  // transposition
  EXPECT_EQ(closest_match("BLOCK_SIZE", keys), "block_size");
  EXPECT_EQ(closest_match("dtype", keys), "");
  EXPECT_EQ(closest_match("x", {}), "");
}

// ---- hostile YAML: bounded while read (check_yaml_bounds) --------------------------------------

// An alias inside its own anchor (a cycle) and nested aliases that expand to 10^9 values are refused
// when the file is loaded, naming the file and line, before any reader walks them.
TEST(SpecBounds, AliasCyclesAndExpansionsRefusedAtLoad) {
  TempFolder dir;
  const std::string cycle = dir.write("cycle.yaml", "name: c\nmodel:\n  rope_scaling: {factor: 2, junk: &r [1, *r]}\n");
  const std::string e = error_of([&] { load_yaml_file(cycle); });
  EXPECT_NE(e.find(cycle + ":3:"), std::string::npos) << e;
  EXPECT_NE(e.find("nests deeper than " + std::to_string(kMaxYamlDepth)), std::string::npos) << e;

  std::string laughs = "name: l\njunk: [&a0 [x, x, x, x, x, x, x, x, x, x]";
  for (int i = 1; i <= 8; ++i) {
    const std::string prev = "*a" + std::to_string(i - 1);
    laughs += ", &a" + std::to_string(i) + " [" + prev;
    for (int k = 1; k < 10; ++k) laughs += ", " + prev;
    laughs += "]";
  }
  laughs += "]\n";
  const std::string big = dir.write("laughs.yaml", laughs);
  const std::string m = error_of([&] { load_yaml_file(big); });
  EXPECT_NE(m.find(big + ":"), std::string::npos) << m;
  EXPECT_NE(m.find("more than " + std::to_string(kMaxYamlNodes) + " values"), std::string::npos) << m;

  // Aliases that stay small are fine.
  const std::string ok = dir.write("ok.yaml", "a: &x {b: 1}\nc: *x\n");
  EXPECT_EQ(load_yaml_file(ok)["c"]["b"].as<int>(), 1);
}

TEST(SpecBounds, OverridesBoundedToo) {
  YAML::Node root = YAML::Load("name: x\n");
  SpecSource src;
  const std::string deep = "a=" + std::string(200, '[') + std::string(200, ']');
  std::string e = error_of([&] { apply_override(root, deep, src); });
  EXPECT_NE(e.find("--set a="), std::string::npos) << e;
  EXPECT_NE(e.find("nests deeper than"), std::string::npos) << e;
  std::string path;
  for (int i = 0; i <= kMaxYamlDepth; ++i) path += (i ? "." : "") + std::string("k");
  e = error_of([&] { apply_override(root, path + "=1", src); });
  EXPECT_NE(e.find("the key path has " + std::to_string(kMaxYamlDepth + 1) + " parts"), std::string::npos) << e;
}

// A key with bounds needs a finite number (unbounded keys keep .inf / .nan: their readers decide).
TEST(SpecBounds, NonFiniteNumbersRefusedWhereBounded) {
  AllTypes s;
  std::string e = error_of([&] { read_spec(YAML::Load("rate: .nan\n"), s, no_file()); });
  EXPECT_NE(e.find("rate: must be a finite number, got .nan"), std::string::npos) << e;
  e = error_of([&] { read_spec(YAML::Load("rate: -.inf\n"), s, no_file()); });
  EXPECT_NE(e.find("rate: must be a finite number, got -.inf"), std::string::npos) << e;
  TestAttention a;
  e = error_of([&] { read_spec(YAML::Load("local_branch: .inf\n"), a, no_file()); });
  EXPECT_NE(e.find("local_branch: expected an integer"), std::string::npos) << e;
}

}  // namespace
}  // namespace lminf
