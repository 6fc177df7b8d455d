// Non-template half of the experiment-spec machinery: files, --set overrides, scalar conversion,
// message texts and the help-table layout. See spec.h for the model.
#include "framework/config/spec.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <system_error>

#include "framework/core/format.h"

namespace lminf {

// ---- files and overrides ----------------------------------------------------------------------

namespace {

// Visits the tree as its readers will, aliases expanded; stops at the first limit passed.
void check_yaml_bounds(const YAML::Node& n, const std::string& where, int depth, int64_t& nodes) {
  auto at = [&] {
    const YAML::Mark m = n.Mark();
    return m.line >= 0 ? where + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) : where;
  };
  if (++nodes > kMaxYamlNodes)
    fail(at(), ": the YAML expands to more than ", kMaxYamlNodes,
         " values once its aliases (*name) are expanded; an experiment spec is far smaller (remove the repeated "
         "aliases)");
  if (depth > kMaxYamlDepth)
    fail(at(), ": the YAML nests deeper than ", kMaxYamlDepth,
         " levels (an alias *name inside the node its anchor &name marks makes an endless loop; remove it)");
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      check_yaml_bounds(it->first, where, depth + 1, nodes);
      check_yaml_bounds(it->second, where, depth + 1, nodes);
    }
  } else if (n.IsSequence()) {
    for (const auto& e : n) check_yaml_bounds(e, where, depth + 1, nodes);
  }
}

}  // namespace

void check_yaml_bounds(const YAML::Node& node, const std::string& where) {
  int64_t nodes = 0;
  check_yaml_bounds(node, where, 0, nodes);
}

YAML::Node load_yaml_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, ": no such file (check the path)");
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a folder, expected a YAML file");
  std::ifstream in(path);
  if (!in) fail(path, ": cannot read the file (", std::strerror(errno), ")");
  try {
    YAML::Node root = YAML::Load(in);
    check_yaml_bounds(root, path);
    return root;
  } catch (const YAML::ParserException& e) {
    fail(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg);
  } catch (const YAML::Exception& e) {
    fail(path, ": cannot parse the YAML: ", e.what());
  }
}

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

const char* kind_of(const YAML::Node& n) {
  if (n.IsScalar()) return "a value";
  if (n.IsSequence()) return "a list";
  return "not a map";
}

}  // namespace

void apply_override(YAML::Node& root, const std::string& assignment, SpecSource& src) {
  const std::string origin = "--set " + assignment;
  const auto eq = assignment.find('=');
  if (eq == std::string::npos)
    fail(origin, ": expected key.path=value (for example --set attention.block_size=128)");
  const std::string key = trim(assignment.substr(0, eq));
  const std::string value_text = assignment.substr(eq + 1);
  if (key.empty())
    fail(origin, ": the key before '=' is empty (write the dotted key path, for example --set "
                 "attention.block_size=128)");

  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
  if (key.back() == '.') parts.push_back("");
  for (const auto& part : parts)
    if (part.empty() || trim(part) != part)
      fail(origin, ": \"", key, "\" is not a dotted key path (write names separated by single dots, "
                                "for example attention.block_size)");

  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    fail(origin, ": the value is not valid YAML (", e.msg,
         "); quote text that contains YAML syntax, for example --set 'name=\"a: b\"'");
  }
  check_yaml_bounds(value, origin);
  if (static_cast<int>(parts.size()) > kMaxYamlDepth)
    fail(origin, ": the key path has ", parts.size(), " parts; at most ", kMaxYamlDepth, " are allowed");

  // Walk down, creating maps. Nodes are handles: reset() moves the handle, `=` would overwrite.
  if (!root.IsDefined() || root.IsNull()) root.reset(YAML::Node(YAML::NodeType::Map));
  if (!root.IsMap()) fail(origin, ": the spec is not a map, so it has no key ", key);
  YAML::Node cur;
  cur.reset(root);
  std::string walked;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    walked = walked.empty() ? parts[i] : walked + "." + parts[i];
    YAML::Node next = cur[parts[i]];
    if (!next.IsDefined() || next.IsNull()) {
      next = YAML::Node(YAML::NodeType::Map);  // fills the (new or null) entry in place
    } else if (!next.IsMap()) {
      fail(origin, ": ", walked, " is ", kind_of(next), ", not a map, so it has no key ", parts[i + 1],
           " (set ", walked, " itself, or fix the key path)");
    }
    cur.reset(next);
  }
  cur[parts.back()] = value;

  // A later override of a whole section replaces what earlier ones set inside it.
  for (auto it = src.overridden.begin(); it != src.overridden.end();) {
    if (it->first.compare(0, key.size() + 1, key + ".") == 0) it = src.overridden.erase(it);
    else ++it;
  }
  src.overridden[key] = origin;
}

// ---- emitting ---------------------------------------------------------------------------------

namespace {

// Walks the tree itself (rather than `emitter << node`) so that scalars tagged "!" (quoted in the
// source, or strings from write_spec that look like another type) are written quoted.
void emit(YAML::Emitter& e, const YAML::Node& n) {
  const std::string& tag = n.Tag();
  if (!tag.empty() && tag != "?" && tag != "!") e << YAML::VerbatimTag(tag);
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      e << YAML::Null;
      break;
    case YAML::NodeType::Scalar:
      if (tag == "!") e << YAML::DoubleQuoted;
      e << n.Scalar();
      break;
    case YAML::NodeType::Sequence:
      if (n.Style() == YAML::EmitterStyle::Flow) e << YAML::Flow;
      e << YAML::BeginSeq;
      for (const auto& x : n) emit(e, x);
      e << YAML::EndSeq;
      break;
    case YAML::NodeType::Map:
      if (n.Style() == YAML::EmitterStyle::Flow) e << YAML::Flow;
      e << YAML::BeginMap;
      for (auto it = n.begin(); it != n.end(); ++it) {
        e << YAML::Key;
        emit(e, it->first);
        e << YAML::Value;
        emit(e, it->second);
      }
      e << YAML::EndMap;
      break;
  }
}

std::string emit_text(const YAML::Node& node, YAML::EMITTER_MANIP style) {
  YAML::Emitter e;
  e.SetNullFormat(YAML::LowerNull);
  e.SetMapFormat(style);
  e.SetSeqFormat(style);
  emit(e, node);
  if (!e.good()) fail("cannot write YAML: ", e.GetLastError());
  return e.c_str();
}

}  // namespace

std::string to_yaml_string(const YAML::Node& node) { return emit_text(node, YAML::Block) + "\n"; }

// ---- suggestions ------------------------------------------------------------------------------

namespace {

// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), case-insensitive.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  const std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const std::size_t dist = edit_distance(word, c);
    if (dist < best_distance) {
      best = c;
      best_distance = dist;
    }
  }
  return best;
}

// ---- scalars ----------------------------------------------------------------------------------
namespace spec_detail {

namespace {

std::string mismatch(const char* expected, const YAML::Node& n, bool null_allowed) {
  return std::string("expected ") + (null_allowed ? "null or " : "") + expected + ", got " + describe_node(n);
}

// Decimal integer with an optional sign: "12", "-3", "+7". Sets *overflow for too many digits.
bool parse_int64(const std::string& s, int64_t& out, bool* overflow) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') {
    ++b;
    if (b != e && *b == '-') return false;  // "+-3"
  }
  if (b == e) return false;
  const auto r = std::from_chars(b, e, out);
  if (r.ptr != e) return false;
  if (r.ec == std::errc::result_out_of_range) {
    *overflow = true;
    return false;
  }
  return r.ec == std::errc();
}

}  // namespace

std::string read_scalar(const YAML::Node& n, bool& out, bool null_allowed) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") {
      out = true;
      return "";
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      out = false;
      return "";
    }
  }
  return mismatch("true or false", n, null_allowed);
}

std::string read_scalar(const YAML::Node& n, int64_t& out, bool null_allowed) {
  bool overflow = false;
  if (n.IsScalar() && parse_int64(n.Scalar(), out, &overflow)) return "";
  if (overflow) return "integer " + n.Scalar() + " is out of range (64-bit)";
  return mismatch("an integer", n, null_allowed);
}

std::string read_scalar(const YAML::Node& n, int& out, bool null_allowed) {
  int64_t wide = 0;
  std::string p = read_scalar(n, wide, null_allowed);
  if (!p.empty()) return p;
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max())
    return "integer " + n.Scalar() + " is out of range (32-bit)";
  out = static_cast<int>(wide);
  return "";
}

std::string read_scalar(const YAML::Node& n, double& out, bool null_allowed) {
  if (n.IsScalar()) {
    std::string s = n.Scalar();
    if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "+.Inf" || s == "+.INF") {
      out = std::numeric_limits<double>::infinity();
      return "";
    }
    if (s == "-.inf" || s == "-.Inf" || s == "-.INF") {
      out = -std::numeric_limits<double>::infinity();
      return "";
    }
    if (s == ".nan" || s == ".NaN" || s == ".NAN") {
      out = std::numeric_limits<double>::quiet_NaN();
      return "";
    }
    const char* b = s.data();
    const char* e = s.data() + s.size();
    const bool plus = b != e && *b == '+';
    if (plus) ++b;
    // from_chars also takes "inf"/"nan"; YAML spells those .inf/.nan, so insist on a digit.
    const bool has_digit = std::any_of(b, e, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    double v = 0;
    const auto r = std::from_chars(b, e, v);
    if (has_digit && !(plus && b != e && *b == '-') && r.ec == std::errc() && r.ptr == e) {
      out = v;
      return "";
    }
    if (has_digit && r.ec == std::errc::result_out_of_range && r.ptr == e)
      return "number " + n.Scalar() + " is out of range for a double";
  }
  return mismatch("a number", n, null_allowed);
}

std::string read_scalar(const YAML::Node& n, std::string& out, bool null_allowed) {
  if (n.IsScalar()) {
    out = n.Scalar();
    return "";
  }
  std::string p = mismatch("a string", n, null_allowed);
  if (n.IsNull() && !null_allowed) p += " (write \"\" for an empty string, or quote \"null\" to mean the word)";
  return p;
}

namespace {

// Would a plain (unquoted) scalar with this text read back as something other than a string?
bool looks_typed(const std::string& s) {
  YAML::Node probe(s);
  bool b = false;
  int64_t i = 0;
  double d = 0;
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL" ||
         read_scalar(probe, b, false).empty() || read_scalar(probe, i, false).empty() ||
         read_scalar(probe, d, false).empty();
}

}  // namespace

YAML::Node encode_scalar(bool v) { return YAML::Node(v ? "true" : "false"); }
YAML::Node encode_scalar(int v) { return YAML::Node(std::to_string(v)); }
YAML::Node encode_scalar(int64_t v) { return YAML::Node(std::to_string(v)); }
YAML::Node encode_scalar(double v) { return YAML::Node(format_double(v, true)); }
YAML::Node encode_scalar(const std::string& v) {
  YAML::Node n(v);
  if (looks_typed(v)) n.SetTag("!");  // to_yaml_string quotes it: "12" stays a string
  return n;
}

const char* type_name(const bool*) { return "bool"; }
const char* type_name(const int*) { return "int"; }
const char* type_name(const int64_t*) { return "int"; }
const char* type_name(const double*) { return "float"; }
const char* type_name(const std::string*) { return "string"; }
const char* plural_name(const bool*) { return "true/false values"; }
const char* plural_name(const int*) { return "integers"; }
const char* plural_name(const int64_t*) { return "integers"; }
const char* plural_name(const double*) { return "numbers"; }
const char* plural_name(const std::string*) { return "strings"; }

// ---- messages ---------------------------------------------------------------------------------

std::string describe_node(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "null";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a map";
  std::string s = n.Scalar();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  std::string quoted = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') quoted += '\\';
    if (c == '\n') {
      quoted += "\\n";
      continue;
    }
    quoted += c;
  }
  return quoted + "\"";
}

std::string format_double(double v, bool force_point) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back exactly
  std::string s(buf, r.ptr);
  if (force_point && s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string locate(const SpecSource& src, const std::string& path, const YAML::Mark& mark) {
  // 1. the key, or a section above it, was set by --set
  for (std::string p = path; !p.empty();) {
    auto it = src.overridden.find(p);
    if (it != src.overridden.end()) return it->second;
    const auto dot = p.rfind('.');
    p = dot == std::string::npos ? "" : p.substr(0, dot);
  }
  const std::string file = src.file.empty() ? "<yaml>" : src.file;
  // 2. a position in the file
  if (!mark.is_null()) return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  // 3. a section that exists only because --set created keys inside it
  for (const auto& [key, origin] : src.overridden)
    if (path.empty() || key.compare(0, path.size() + 1, path + ".") == 0) return origin;
  return file;
}

std::string unknown_key_text(const std::string& key, const std::vector<std::string>& valid) {
  if (valid.empty()) return "unknown key \"" + key + "\" (this section takes no keys)";
  const std::string guess = closest_match(key, valid);
  std::string s = "unknown key \"" + key + "\" (";
  if (!guess.empty()) s += "did you mean \"" + guess + "\"? ";
  return s + "valid keys: " + join_list(valid, ", ") + ")";
}

std::string choice_text(const std::string& value, const std::vector<std::string>& choices) {
  std::string s = "\"" + value + "\" is not one of: " + join_list(choices, ", ");
  const std::string guess = closest_match(value, choices);
  if (!guess.empty()) s += " (did you mean \"" + guess + "\"?)";
  return s;
}

std::string constraints_text(const FieldOptions& o) {
  std::vector<std::string> parts;
  if (o.choices) parts.push_back("one of: " + join_list(*o.choices, ", "));
  if (o.min && o.max) parts.push_back(format_double(*o.min, false) + " to " + format_double(*o.max, false));
  else if (o.min) parts.push_back(">= " + format_double(*o.min, false));
  else if (o.max) parts.push_back("<= " + format_double(*o.max, false));
  return parts.empty() ? "" : " [" + join_list(parts, "; ") + "]";
}

std::string to_flow_string(const YAML::Node& node) { return emit_text(node, YAML::Flow); }

bool yaml_equal(const YAML::Node& a, const YAML::Node& b) {
  const bool a_null = !a.IsDefined() || a.IsNull();
  const bool b_null = !b.IsDefined() || b.IsNull();
  if (a_null || b_null) return a_null == b_null;
  if (a.Type() != b.Type()) return false;
  switch (a.Type()) {
    case YAML::NodeType::Scalar:
      return a.Scalar() == b.Scalar();
    case YAML::NodeType::Sequence:
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i)
        if (!yaml_equal(a[i], b[i])) return false;
      return true;
    case YAML::NodeType::Map: {
      if (a.size() != b.size()) return false;
      for (auto ia = a.begin(); ia != a.end(); ++ia) {
        bool found = false;
        for (auto ib = b.begin(); ib != b.end() && !found; ++ib)
          found = yaml_equal(ia->first, ib->first) && yaml_equal(ia->second, ib->second);
        if (!found) return false;
      }
      return true;
    }
    default:
      return true;
  }
}

std::string join_key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::string format_help_rows(const std::vector<HelpRow>& rows) {
  std::size_t path_w = 0, type_w = 0, default_w = 0;
  auto is_heading = [](const HelpRow& r) { return r.type.empty() && r.path.rfind("# ", 0) == 0; };
  for (const auto& r : rows) {
    if (is_heading(r)) continue;  // printed as is, not aligned
    path_w = std::max(path_w, 2 * r.depth + r.path.size());
    type_w = std::max(type_w, r.type.size());
    default_w = std::max(default_w, r.default_text.size());
  }
  default_w = std::min<std::size_t>(default_w, 24);  // a long default pushes only its own line
  std::string out;
  for (const auto& r : rows) {
    if (is_heading(r)) {
      out += r.path + "\n";
      continue;
    }
    std::string line = std::string(2 * r.depth, ' ') + r.path;
    line += std::string(path_w - line.size() + 2, ' ') + r.type;
    line += std::string(type_w - r.type.size() + 2, ' ') + r.default_text;
    if (!r.help.empty()) {
      const std::size_t pad = r.default_text.size() < default_w ? default_w - r.default_text.size() : 0;
      line += std::string(pad + 2, ' ') + r.help;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace spec_detail
}  // namespace lminf
