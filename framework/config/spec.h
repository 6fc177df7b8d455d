// Experiment specs: plain config structs with one visit function. That one function drives reading
// YAML (with every problem reported at its file:line:col), writing the resolved spec, the help text
// of `lminf keys`, and equality.
//
//   struct AttentionSpec {
//     std::string variant = "vanilla";              // defaults are the member initializers
//     int64_t block_size = 256;
//     std::optional<int64_t> limit_distance;        // null allowed
//     template <class V> void visit(V& v) {
//       v("variant", variant, "attention variant", Choices{"vanilla", "lambda"});
//       v("block_size", block_size, "query/key block size of the kernel", Min{1});
//       v("limit_distance", limit_distance, "distance cap; null = none");
//     }
//   };
//
//   SpecSource src{"configs/x.yaml", {}};
//   YAML::Node root = load_yaml_file(src.file);
//   apply_override(root, "attention.block_size=128", src);        // from --set
//   AttentionSpec spec;
//   read_spec(root["attention"], spec, src, "attention");         // throws one Error listing all problems
//
// Field types: bool, int, int64_t, double, std::string, std::optional<X> and std::vector<X> of those,
// nested structs with a visit function, and YAML::Node (a raw section, kept as written).
// Field options, any subset in any order: Required{}, Choices{"a", "b"} (string fields),
// Min{x} / Max{x} (number fields, inclusive; for optionals and lists each present value is checked).
//
// YAML::Node fields are handles (yaml-cpp): copies of a spec share them, and `node = other` writes
// through to every holder. Replace a raw field with `spec.task.reset(other)`.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "framework/core/error.h"

namespace lminf {

// ---- field options ----------------------------------------------------------------------------

// The key must be present in the YAML (the member initializer is then only a placeholder).
struct Required {};

// The string value (or each string of a list) must be one of these.
struct Choices {
  Choices(std::initializer_list<std::string> v) : values(v) {}
  explicit Choices(std::vector<std::string> v) : values(std::move(v)) {}  // a list known at run time (a registry)
  std::vector<std::string> values;
};

// Inclusive bounds on a number field.
struct Min {
  template <class N, std::enable_if_t<std::is_arithmetic_v<N>, int> = 0>
  Min(N x) : value(static_cast<double>(x)) {}
  double value;
};
struct Max {
  template <class N, std::enable_if_t<std::is_arithmetic_v<N>, int> = 0>
  Max(N x) : value(static_cast<double>(x)) {}
  double value;
};

// ---- where the YAML came from -----------------------------------------------------------------

// Lets error messages point at the line of the file, or at the --set that put the value there.
struct SpecSource {
  std::string file;  // the YAML file the root was loaded from ("" for YAML built in code)
  // dotted key path -> origin text, e.g. "attention.local_branch" -> "--set attention.local_branch=2048"
  std::map<std::string, std::string> overridden;
};

// ---- plain helpers (spec.cpp) -----------------------------------------------------------------

// Parses a YAML file. Throws Error naming the file (missing, unreadable) or "file:line:col: YAML
// syntax error: ..." for malformed YAML. An empty file gives a null node.
// The tree is checked with check_yaml_bounds.
YAML::Node load_yaml_file(const std::string& path);

// Limits on a spec's YAML as its readers walk it, aliases expanded: an alias inside its own anchor
// (a cycle) or a few lines of nested aliases (10^9 values: "billion laughs") would otherwise overflow
// the stack or never finish. Throws Error naming `where` (and the line) past either limit.
inline constexpr int kMaxYamlDepth = 64;
inline constexpr int64_t kMaxYamlNodes = 1000000;
void check_yaml_bounds(const YAML::Node& node, const std::string& where);

// Applies one `key.path=value` (from --set) to `root`. The value is parsed as YAML, so 4096, true,
// null, [1, 2], {a: 1} and bfloat16 all mean what they would in the file. Missing intermediate maps
// are created (null ones replaced); records the origin in src.overridden. The value is checked with
// check_yaml_bounds, and the key path may have at most kMaxYamlDepth parts.
void apply_override(YAML::Node& root, const std::string& assignment, SpecSource& src);

// Block-style YAML text of a node, ending in a newline. Strings that came from quoted scalars (or
// from write_spec and would otherwise read back as another type) stay quoted; nulls print as null.
std::string to_yaml_string(const YAML::Node& node);

// The candidate closest to `word` by edit distance (ignoring case, a transposition counts once), or
// "" when none is within about a third of the word's length. Ties go to the earlier candidate.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace lminf

// The machinery behind the templates below (the visitors: reader, writer, describer, comparer).
#include "framework/config/spec_detail.h"

namespace lminf {

// ---- the spec API -----------------------------------------------------------------------------

// Fills `out` from `node` (a map; null or undefined means "all defaults"). Keys absent from the
// YAML keep the member initializers. `prefix` is the dotted path of `node` in the whole spec
// ("task" when reading root["task"]), used in messages and to find --set origins.
// Throws one Error listing every problem in the tree, one per line:
//   configs/x.yaml:7:15: attention.block_size: expected an integer, got "x"
//   --set attention.variant=lamda: attention.variant: "lamda" is not one of: vanilla, lambda (did you mean "lambda"?)
// On error `out` is left unchanged. Raw YAML::Node fields share the parsed tree (marks kept).
template <class T>
void read_spec(const YAML::Node& node, T& out, const SpecSource& src, const std::string& prefix = "") {
  static_assert(spec_detail::is_spec_v<T>, "read_spec needs a struct with a visit function");
  // Pass 1 reads into a copy to collect the problems; pass 2, which then finds none, fills `out`.
  // (Not `out = copy`: assigning a YAML::Node writes through to the tree `out` held before.)
  T scratch = out;
  std::vector<std::string> problems;
  spec_detail::read_root(node, scratch, src, prefix, problems);
  if (!problems.empty()) {
    std::string message;
    for (const auto& p : problems) message += (message.empty() ? "" : "\n") + p;
    throw Error(message);
  }
  spec_detail::read_root(node, out, src, prefix, problems);
}

// Every field, defaults included, in visit order: the complete resolved spec. Empty optionals are
// null; raw YAML::Node fields are deep-copied.
template <class T>
YAML::Node write_spec(const T& in) {
  static_assert(spec_detail::is_spec_v<T>, "write_spec needs a struct with a visit function");
  return spec_detail::write_spec_impl(in);
}

// Help text for `lminf keys`: one line per key with its dotted path, type, default and help,
// nested sections indented under their own line.
template <class T>
std::string describe_spec(const std::string& prefix = "") {
  static_assert(spec_detail::is_spec_v<T>, "describe_spec needs a struct with a visit function");
  T defaults{};
  std::vector<spec_detail::HelpRow> rows;
  spec_detail::SpecDescriber d(rows, prefix, 0);
  defaults.visit(d);
  return spec_detail::format_help_rows(rows);
}

// Field-by-field equality through visit (NaN equals NaN; YAML::Node fields by structure).
template <class T>
bool spec_equal(const T& a, const T& b) {
  static_assert(spec_detail::is_spec_v<T>, "spec_equal needs a struct with a visit function");
  return spec_detail::spec_equal_impl(a, b);
}

}  // namespace lminf
