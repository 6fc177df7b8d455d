// The machinery behind framework/config/spec.h's templates: type traits of the field types, leaf
// reading/writing, and the visitors (SpecReader, SpecWriter, SpecDescriber, SpecComparer) that one
// visit() function drives. Included by spec.h only; use the API there.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "framework/core/error.h"

namespace lminf {

// ---- machinery behind the templates -----------------------------------------------------------
namespace spec_detail {

// A visitor that does nothing; used only to detect "has a visit function".
struct VisitProbe {
  template <class M, class... Opts>
  void operator()(const std::string&, M&, const std::string&, const Opts&...) {}
};

template <class T, class = void>
struct IsSpec : std::false_type {};
template <class T>
struct IsSpec<T, std::void_t<decltype(std::declval<T&>().visit(std::declval<VisitProbe&>()))>>
    : std::true_type {};
template <class T>
inline constexpr bool is_spec_v = IsSpec<T>::value;

template <class T, class... Us>
inline constexpr bool is_one_of_v = (std::is_same_v<T, Us> || ...);

template <class T>
inline constexpr bool is_scalar_v = is_one_of_v<T, bool, int, int64_t, double, std::string>;
template <class T>
struct IsLeaf : std::bool_constant<is_scalar_v<T> || std::is_same_v<T, YAML::Node>> {};
template <class X>
struct IsLeaf<std::optional<X>> : std::bool_constant<is_scalar_v<X>> {};
template <class X>
struct IsLeaf<std::vector<X>> : std::bool_constant<is_scalar_v<X>> {};
template <class T>
inline constexpr bool is_leaf_v = IsLeaf<T>::value;

// Fields that Min/Max and Choices apply to.
template <class T>
inline constexpr bool is_number_v = is_one_of_v<T, int, int64_t, double>;
template <class X>
inline constexpr bool is_number_v<std::optional<X>> = is_number_v<X>;
template <class X>
inline constexpr bool is_number_v<std::vector<X>> = is_number_v<X>;
template <class T>
inline constexpr bool is_text_v = std::is_same_v<T, std::string>;
template <class X>
inline constexpr bool is_text_v<std::optional<X>> = is_text_v<X>;
template <class X>
inline constexpr bool is_text_v<std::vector<X>> = is_text_v<X>;

template <class M, class Opt>
constexpr bool option_fits() {
  if constexpr (std::is_same_v<Opt, Required>) return true;
  else if constexpr (std::is_same_v<Opt, Choices>) return is_text_v<M>;
  else if constexpr (std::is_same_v<Opt, Min> || std::is_same_v<Opt, Max>) return is_number_v<M>;
  else return false;
}

// Compile-time check of one v(key, member, help, options...) call.
template <class M, class... Opts>
constexpr void check_field() {
  static_assert(is_spec_v<M> || is_leaf_v<M>,
                "spec field type not supported: use bool, int, int64_t, double, std::string, "
                "std::optional or std::vector of those, a struct with visit(), or YAML::Node");
  static_assert((option_fits<M, Opts>() && ...),
                "spec field option does not fit: options are Required{}, Choices{...} (string "
                "fields) and Min{x}/Max{x} (number fields)");
}

// The options of one field, gathered from the trailing arguments.
struct FieldOptions {
  bool required = false;
  std::optional<std::vector<std::string>> choices;
  std::optional<double> min;
  std::optional<double> max;
};
inline void add_option(FieldOptions& o, const Required&) { o.required = true; }
inline void add_option(FieldOptions& o, const Choices& c) { o.choices = c.values; }
inline void add_option(FieldOptions& o, const Min& m) { o.min = m.value; }
inline void add_option(FieldOptions& o, const Max& m) { o.max = m.value; }
template <class... Opts>
FieldOptions make_options(const Opts&... opts) {
  FieldOptions o;
  (add_option(o, opts), ...);
  return o;
}

// One problem found inside a leaf value; `sub` extends the key path ("[2]" for a list element).
struct LeafProblem {
  std::string sub;
  YAML::Mark mark;
  std::string text;
};

// Scalars (spec.cpp). read_scalar returns "" on success, else the problem ("expected an integer,
// got \"x\""); null_allowed only changes the wording ("expected null or an integer").
std::string read_scalar(const YAML::Node& n, bool& out, bool null_allowed);
std::string read_scalar(const YAML::Node& n, int& out, bool null_allowed);
std::string read_scalar(const YAML::Node& n, int64_t& out, bool null_allowed);
std::string read_scalar(const YAML::Node& n, double& out, bool null_allowed);
std::string read_scalar(const YAML::Node& n, std::string& out, bool null_allowed);
YAML::Node encode_scalar(bool v);
YAML::Node encode_scalar(int v);
YAML::Node encode_scalar(int64_t v);
YAML::Node encode_scalar(double v);
YAML::Node encode_scalar(const std::string& v);
// "int", "float", ... for the help text; "integers", "numbers", ... for "expected a list of ...".
const char* type_name(const bool*);
const char* type_name(const int*);
const char* type_name(const int64_t*);
const char* type_name(const double*);
const char* type_name(const std::string*);
const char* plural_name(const bool*);
const char* plural_name(const int*);
const char* plural_name(const int64_t*);
const char* plural_name(const double*);
const char* plural_name(const std::string*);

// What a node holds, for "got ...": null, "text", a list, a map.
std::string describe_node(const YAML::Node& n);
// Shortest text that reads back to the same double; with force_point, 2 prints as 2.0.
std::string format_double(double v, bool force_point);
// "file:line:col" for a mark, or the --set that produced `path` (or an ancestor of it).
std::string locate(const SpecSource& src, const std::string& path, const YAML::Mark& mark);
// `unknown key "x" (did you mean "y"? valid keys: ...)`
std::string unknown_key_text(const std::string& key, const std::vector<std::string>& valid);
// `"lamda" is not one of: vanilla, lambda (did you mean "lambda"?)`
std::string choice_text(const std::string& value, const std::vector<std::string>& choices);
// " [one of: a, b]", " [>= 1]", ... appended to help lines.
std::string constraints_text(const FieldOptions& o);
// Flow-style one-line YAML, for defaults in the help text.
std::string to_flow_string(const YAML::Node& node);
// Structural equality (maps compared by key, ignoring order; scalars by text).
bool yaml_equal(const YAML::Node& a, const YAML::Node& b);
std::string join_key(const std::string& prefix, const std::string& key);

// ---- leaf values: optional and vector built on the scalars ----

template <class X>
std::vector<LeafProblem> read_value(const YAML::Node& n, X& out) {
  std::string p = read_scalar(n, out, false);
  if (p.empty()) return {};
  return {{"", n.Mark(), p}};
}
template <class X>
std::vector<LeafProblem> read_value(const YAML::Node& n, std::optional<X>& out) {
  if (n.IsNull()) {
    out.reset();
    return {};
  }
  X x{};
  std::string p = read_scalar(n, x, true);
  if (!p.empty()) return {{"", n.Mark(), p}};
  out = std::move(x);
  return {};
}
template <class X>
std::vector<LeafProblem> read_value(const YAML::Node& n, std::vector<X>& out) {
  const X* tag = nullptr;
  if (!n.IsSequence()) {
    std::string p = std::string("expected a list of ") + plural_name(tag) + ", got " + describe_node(n);
    if (n.IsNull()) p += " (write [] for an empty list)";
    if (n.IsScalar()) p += " (write [" + n.Scalar() + "] for a list of one)";
    return {{"", n.Mark(), p}};
  }
  std::vector<LeafProblem> problems;
  std::vector<X> values;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const YAML::Node e = n[i];
    X x{};
    std::string p = read_scalar(e, x, false);
    if (!p.empty()) problems.push_back({"[" + std::to_string(i) + "]", e.Mark(), p});
    values.push_back(std::move(x));
  }
  if (problems.empty()) out = std::move(values);
  return problems;
}

template <class X>
YAML::Node write_value(const X& v) {
  return encode_scalar(v);
}
template <class X>
YAML::Node write_value(const std::optional<X>& v) {
  return v ? encode_scalar(*v) : YAML::Node(YAML::NodeType::Null);
}
template <class X>
YAML::Node write_value(const std::vector<X>& v) {
  YAML::Node seq(YAML::NodeType::Sequence);
  for (const auto& x : v) seq.push_back(encode_scalar(static_cast<X>(x)));
  seq.SetStyle(YAML::EmitterStyle::Flow);  // lists of scalars read best on one line
  return seq;
}
inline YAML::Node write_value(const YAML::Node& v) { return YAML::Clone(v); }

template <class X>
std::string leaf_type_name(const X* tag) {
  return type_name(tag);
}
template <class X>
std::string leaf_type_name(const std::optional<X>*) {
  return type_name(static_cast<const X*>(nullptr)) + std::string("|null");
}
template <class X>
std::string leaf_type_name(const std::vector<X>*) {
  return "list[" + std::string(type_name(static_cast<const X*>(nullptr))) + "]";
}
inline std::string leaf_type_name(const YAML::Node*) { return "yaml"; }

// Exact equality, except that NaN equals NaN (so a spec with NaN round-trips) and YAML by structure.
template <class X>
bool leaf_equal(const X& a, const X& b) {
  return a == b;
}
inline bool leaf_equal(const double& a, const double& b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}
inline bool leaf_equal(const std::optional<double>& a, const std::optional<double>& b) {
  return a.has_value() == b.has_value() && (!a || leaf_equal(*a, *b));
}
inline bool leaf_equal(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!leaf_equal(a[i], b[i])) return false;
  return true;
}
inline bool leaf_equal(const YAML::Node& a, const YAML::Node& b) { return yaml_equal(a, b); }

// The numbers / strings in a leaf, each with its sub-path, for Min/Max and Choices.
struct NumberItem {
  std::string sub;
  double value;
  std::string text;
};
inline void collect_numbers(int64_t v, const std::string& sub, std::vector<NumberItem>& out) {
  out.push_back({sub, static_cast<double>(v), std::to_string(v)});
}
inline void collect_numbers(int v, const std::string& sub, std::vector<NumberItem>& out) {
  out.push_back({sub, static_cast<double>(v), std::to_string(v)});
}
inline void collect_numbers(double v, const std::string& sub, std::vector<NumberItem>& out) {
  out.push_back({sub, v, format_double(v, false)});
}
template <class X>
void collect_numbers(const std::optional<X>& v, const std::string& sub, std::vector<NumberItem>& out) {
  if (v) collect_numbers(*v, sub, out);
}
template <class X>
void collect_numbers(const std::vector<X>& v, const std::string& sub, std::vector<NumberItem>& out) {
  for (std::size_t i = 0; i < v.size(); ++i) collect_numbers(v[i], sub + "[" + std::to_string(i) + "]", out);
}
inline void collect_texts(const std::string& v, const std::string& sub,
                          std::vector<std::pair<std::string, std::string>>& out) {
  out.emplace_back(sub, v);
}
inline void collect_texts(const std::optional<std::string>& v, const std::string& sub,
                          std::vector<std::pair<std::string, std::string>>& out) {
  if (v) out.emplace_back(sub, *v);
}
inline void collect_texts(const std::vector<std::string>& v, const std::string& sub,
                          std::vector<std::pair<std::string, std::string>>& out) {
  for (std::size_t i = 0; i < v.size(); ++i) out.emplace_back(sub + "[" + std::to_string(i) + "]", v[i]);
}

// The visit functions are non-const (one function serves reading too); the visitors below that
// only read call it through this.
template <class T, class V>
void visit_const(const T& x, V& v) {
  const_cast<T&>(x).visit(v);
}

// ---- reading ----

// Reads the fields of one section (a map node, or null/missing for "all defaults"), appending
// every problem as a finished "where: key.path: problem" line.
class SpecReader {
 public:
  // section_mark: where to point for problems of keys that are absent (missing required keys).
  SpecReader(const YAML::Node& node, const SpecSource& src, std::string prefix,
             const YAML::Mark& section_mark, std::vector<std::string>& problems)
      : src_(src), prefix_(std::move(prefix)), section_mark_(section_mark), problems_(problems) {
    if (node.IsDefined()) node_.reset(node);
  }

  template <class M, class... Opts>
  void operator()(const std::string& key, M& member, const std::string& help, const Opts&... opts) {
    check_field<M, Opts...>();
    const FieldOptions o = make_options(opts...);
    keys_.push_back(key);
    const std::string path = join_key(prefix_, key);

    YAML::Node child;
    bool present = false;
    if (node_.IsMap()) {
      const YAML::Node& section = node_;
      const YAML::Node c = section[key];
      if (c.IsDefined()) {
        child.reset(c);
        present = true;
      }
    }
    if (!present) {  // default kept
      if (o.required) add(path, "", section_mark_, "missing required key (" + help + ")");
      if constexpr (is_spec_v<M>) read_section(YAML::Node(), path, section_mark_, member);
      return;
    }
    const YAML::Mark mark = child.Mark();
    if constexpr (is_spec_v<M>) {
      if (child.IsNull()) {
        read_section(YAML::Node(), path, mark, member);  // null section = all defaults
      } else if (!child.IsMap()) {
        add(path, "", mark, "expected a map, got " + describe_node(child));
      } else {
        read_section(child, path, mark, member);
      }
    } else if constexpr (std::is_same_v<M, YAML::Node>) {
      member.reset(child);  // shares the parsed tree, marks included, for later validation
    } else {
      M value{};
      std::vector<LeafProblem> leaf_problems = read_value(child, value);
      for (const auto& p : leaf_problems) add(path, p.sub, p.mark, p.text);
      if (!leaf_problems.empty()) return;
      const std::size_t before = problems_.size();
      if constexpr (is_number_v<M>) check_bounds(path, mark, value, o);
      if constexpr (is_text_v<M>) check_choices(path, mark, value, o);
      if (problems_.size() == before) member = std::move(value);
    }
  }

  // For sections whose keys depend on a value read earlier in the same visit (attention: the keys
  // of the chosen variant): the section being read, its dotted path and source (for locate()), and a
  // key that is valid though no field reads it here (it counts for unknown-key checks and did-you-mean).
  const YAML::Node& section() const { return node_; }
  const std::string& prefix() const { return prefix_; }
  const SpecSource& source() const { return src_; }
  void claim_key(const std::string& key) { keys_.push_back(key); }

  // Reports keys of the section that no field claimed (and keys given twice).
  void check_unknown_keys() {
    if (!node_.IsMap()) return;
    std::vector<std::string> seen;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      const YAML::Node k = it->first;  // a copy: `it->` yields a temporary
      const std::string name = k.IsScalar() ? k.Scalar() : to_flow_string(k);
      const std::string path = join_key(prefix_, name);
      bool known = false;
      for (const auto& valid : keys_) known = known || valid == name;
      bool repeated = false;
      for (const auto& s : seen) repeated = repeated || s == name;
      seen.push_back(name);
      if (!known) {
        add(path, "", k.Mark(), unknown_key_text(name, keys_));
      } else if (repeated) {
        add(path, "", k.Mark(), "key given twice in this section (only the first is used; remove one)");
      }
    }
  }

 private:
  template <class M>
  void read_section(const YAML::Node& node, const std::string& path, const YAML::Mark& mark, M& member) {
    SpecReader sub(node, src_, path, mark, problems_);
    member.visit(sub);
    sub.check_unknown_keys();
  }

  template <class M>
  void check_bounds(const std::string& path, const YAML::Mark& mark, const M& value, const FieldOptions& o) {
    // A key with bounds needs a finite number (NaN passes no comparison, infinity no sensible bound).
    if (!o.min && !o.max) return;
    std::vector<NumberItem> items;
    collect_numbers(value, "", items);
    for (const auto& item : items) {
      if (!std::isfinite(item.value))
        add(path, item.sub, mark, "must be a finite number, got " + item.text);
      else if (o.min && !(item.value >= *o.min))
        add(path, item.sub, mark, "must be >= " + format_double(*o.min, false) + ", got " + item.text);
      else if (o.max && !(item.value <= *o.max))
        add(path, item.sub, mark, "must be <= " + format_double(*o.max, false) + ", got " + item.text);
    }
  }

  template <class M>
  void check_choices(const std::string& path, const YAML::Mark& mark, const M& value, const FieldOptions& o) {
    if (!o.choices) return;
    std::vector<std::pair<std::string, std::string>> items;
    collect_texts(value, "", items);
    for (const auto& [sub, text] : items) {
      bool ok = false;
      for (const auto& c : *o.choices) ok = ok || c == text;
      if (!ok) add(path, sub, mark, choice_text(text, *o.choices));
    }
  }

  void add(const std::string& path, const std::string& sub, const YAML::Mark& mark, const std::string& text) {
    const std::string shown = path.empty() ? std::string("(top level)") : path + sub;
    problems_.push_back(locate(src_, path, mark) + ": " + shown + ": " + text);
  }

  YAML::Node node_{YAML::NodeType::Null};
  const SpecSource& src_;
  std::string prefix_;
  YAML::Mark section_mark_;
  std::vector<std::string>& problems_;
  std::vector<std::string> keys_;  // the valid keys of this section, in visit order
};

// ---- writing, help text, equality ----

class SpecWriter {
 public:
  explicit SpecWriter(YAML::Node& out) : out_(out) {}
  template <class M, class... Opts>
  void operator()(const std::string& key, M& member, const std::string&, const Opts&...);

 private:
  YAML::Node& out_;
};

struct HelpRow {
  int depth;
  std::string path, type, default_text, help;
};
// Aligns the rows into columns (spec.cpp).
std::string format_help_rows(const std::vector<HelpRow>& rows);

class SpecDescriber {
 public:
  SpecDescriber(std::vector<HelpRow>& rows, std::string prefix, int depth)
      : rows_(rows), prefix_(std::move(prefix)), depth_(depth) {}
  // A line of its own between the keys (`# ...`), e.g. the name of the variant whose keys follow.
  void heading(const std::string& text) { rows_.push_back({0, "# " + text, "", "", ""}); }
  const std::string& prefix() const { return prefix_; }

  template <class M, class... Opts>
  void operator()(const std::string& key, M& member, const std::string& help, const Opts&... opts) {
    check_field<M, Opts...>();
    const FieldOptions o = make_options(opts...);
    const std::string path = join_key(prefix_, key);
    std::string help_text = help + constraints_text(o);
    if constexpr (is_spec_v<M>) {
      rows_.push_back({depth_, path, "map", o.required ? "(required)" : "", help_text});
      SpecDescriber sub(rows_, path, depth_ + 1);
      member.visit(sub);
    } else {
      const M* tag = nullptr;
      rows_.push_back({depth_, path, leaf_type_name(tag),
                       o.required ? "(required)" : to_flow_string(write_value(member)), help_text});
    }
  }

 private:
  std::vector<HelpRow>& rows_;
  std::string prefix_;
  int depth_;
};

// Records the address of every field, in visit order, so a second object can be walked in step.
class FieldAddresses {
 public:
  explicit FieldAddresses(std::vector<const void*>& out) : out_(out) {}
  template <class M, class... Opts>
  void operator()(const std::string&, M& member, const std::string&, const Opts&...) {
    out_.push_back(&member);
  }

 private:
  std::vector<const void*>& out_;
};

template <class T>
bool spec_equal_impl(const T& a, const T& b);

class SpecComparer {
 public:
  explicit SpecComparer(const std::vector<const void*>& other) : other_(other) {}
  template <class M, class... Opts>
  void operator()(const std::string&, M& member, const std::string&, const Opts&...) {
    check_field<M, Opts...>();
    // Same type T visited in the same order, so field i of the other object is also an M -- while
    // the fields so far are equal: a spec whose later fields depend on an earlier one (attention's
    // variant) has another field list once that one differs, so stop looking then.
    const std::size_t i = next_++;
    if (!equal_) return;
    if (i >= other_.size()) {
      equal_ = false;
      return;
    }
    const M& theirs = *static_cast<const M*>(other_[i]);
    if constexpr (is_spec_v<M>) equal_ = spec_equal_impl(member, theirs);
    else equal_ = leaf_equal(member, theirs);
  }
  bool equal() const { return equal_ && next_ == other_.size(); }

 private:
  const std::vector<const void*>& other_;
  std::size_t next_ = 0;
  bool equal_ = true;
};

template <class T>
YAML::Node write_spec_impl(const T& in) {
  YAML::Node out(YAML::NodeType::Map);
  SpecWriter w(out);
  visit_const(in, w);
  return out;
}

template <class M, class... Opts>
void SpecWriter::operator()(const std::string& key, M& member, const std::string&, const Opts&...) {
  check_field<M, Opts...>();
  if constexpr (is_spec_v<M>) out_[key] = write_spec_impl(member);
  else out_[key] = write_value(member);
}

template <class T>
bool spec_equal_impl(const T& a, const T& b) {
  std::vector<const void*> theirs;
  FieldAddresses collect(theirs);
  visit_const(b, collect);
  SpecComparer compare(theirs);
  visit_const(a, compare);
  return compare.equal();
}

template <class T>
void read_root(const YAML::Node& node, T& out, const SpecSource& src, const std::string& prefix,
               std::vector<std::string>& problems) {
  const bool defined = node.IsDefined();
  const YAML::Mark mark = defined ? node.Mark() : YAML::Mark::null_mark();
  if (defined && !node.IsNull() && !node.IsMap()) {
    problems.push_back(locate(src, prefix, mark) + ": " + (prefix.empty() ? std::string("(top level)") : prefix) +
                       ": expected a map, got " + describe_node(node));
    return;
  }
  SpecReader reader(defined ? node : YAML::Node(), src, prefix, mark, problems);
  out.visit(reader);
  reader.check_unknown_keys();
}

}  // namespace spec_detail

}  // namespace lminf
