#include "analysis/report/html/report_page.h"

#include <algorithm>

#include "analysis/report/html/html_table.h"
#include "analysis/report/html/html_text.h"
#include "analysis/report/html/json_view.h"

namespace lminf {
using nlohmann::ordered_json;

namespace {

std::string point_label(size_t i) { return "#" + std::to_string(i + 1); }
std::string point_id(size_t i) { return "point-" + std::to_string(i + 1); }

const ordered_json* results_of(const ReportPoint& p) {
  return p.run && p.run->results && p.run->results->is_object() ? &*p.run->results : nullptr;
}

std::string status_of(const ReportPoint& p) {
  if (!p.run) return "not run";
  const ordered_json* r = results_of(p);
  if (!r) return p.run->results ? "unreadable results.json" : "no results.json";
  if (r->contains("complete") && (*r)["complete"].is_boolean() && !(*r)["complete"].get<bool>()) return "incomplete";
  return "done";
}

std::string override_of(const ReportPoint& p, const std::string& key) {
  for (const auto& [k, v] : p.overrides)
    if (k == key) return v;
  return "";
}

// The results' top-level numbers and booleans, in order of first appearance over the points.
std::vector<std::string> scalar_metrics(const SweepFolder& s) {
  std::vector<std::string> names;
  for (const ReportPoint& p : s.points)
    if (const ordered_json* r = results_of(p))
      for (auto it = r->begin(); it != r->end(); ++it)
        if ((it.value().is_number() || it.value().is_boolean()) && it.key() != "schema_version" &&
            std::find(names.begin(), names.end(), it.key()) == names.end())
          names.push_back(it.key());
  return names;
}

HtmlTable sweep_table(const SweepFolder& s) {
  HtmlTable t{"one row per point: its overrides, then its results.json", {"point"}, {}, {}};
  t.columns.insert(t.columns.end(), s.keys.begin(), s.keys.end());
  t.columns.push_back("status");
  const std::vector<std::string> metrics = scalar_metrics(s);
  t.columns.insert(t.columns.end(), metrics.begin(), metrics.end());
  for (size_t i = 0; i < s.points.size(); ++i) {
    const ReportPoint& p = s.points[i];
    std::vector<std::string> row{point_label(i)};
    for (const auto& k : s.keys) row.push_back(override_of(p, k));
    row.push_back(status_of(p));
    const ordered_json* r = results_of(p);
    for (const auto& m : metrics) row.push_back(r && r->contains(m) ? json_cell_text((*r)[m]) : "");
    t.rows.push_back(std::move(row));
    t.row_links.push_back(point_id(i));
  }
  return t;
}

// For each results.json member that is an array of records: one table over all points, each record
// preceded by its point and the point's overrides.
std::string records_across_points(const SweepFolder& s) {
  std::vector<std::string> keys;
  for (const ReportPoint& p : s.points)
    if (const ordered_json* r = results_of(p))
      for (auto it = r->begin(); it != r->end(); ++it)
        if (is_record_array(it.value()) && std::find(keys.begin(), keys.end(), it.key()) == keys.end())
          keys.push_back(it.key());
  std::string h;
  for (const std::string& key : keys) {
    ordered_json rows = ordered_json::array();
    for (size_t i = 0; i < s.points.size(); ++i) {
      const ordered_json* r = results_of(s.points[i]);
      if (!r || !r->contains(key) || !is_record_array((*r)[key])) continue;
      for (const ordered_json& rec : flatten_records((*r)[key])) {
        ordered_json row = ordered_json::object();
        row["point"] = point_label(i);
        for (const auto& k : s.keys) row[k] = override_of(s.points[i], k);
        for (auto it = rec.begin(); it != rec.end(); ++it) row[it.key()] = it.value();
        rows.push_back(std::move(row));
      }
    }
    if (rows.size() > kMaxTableRows) rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(kMaxTableRows), rows.end());
    h += render_table(records_table(rows, key + ": " + std::to_string(rows.size()) + " rows over the points"));
  }
  return h;
}

std::string point_html(const SweepFolder& s, size_t i) {
  const ReportPoint& p = s.points[i];
  std::string h = "<details class=\"point\" id=\"" + point_id(i) + "\"><summary>" +
                  html_escape(point_label(i) + " " + p.name + " (" + status_of(p) + ", folder " + p.folder + ")") +
                  "</summary>";
  if (p.run) {
    if (p.run->results) h += "<h3>Results</h3>" + results_html(*p.run->results, 4);
    for (const PageSection& d : run_detail_sections(*p.run, point_id(i) + "-"))
      h += "<div class=\"sub\">" + d.html + "</div>";
  }
  return h + "</details>";
}

// Every point's provenance (its config aside) as one table: a row per field, a column per point.
HtmlTable provenance_table(const SweepFolder& s) {
  HtmlTable t{"results.json provenance of each point", {"field"}, {}, {}};
  std::vector<ordered_json> provs;
  std::vector<std::string> fields;
  for (size_t i = 0; i < s.points.size(); ++i) {
    const ordered_json* r = results_of(s.points[i]);
    if (!r) continue;
    t.columns.push_back(point_label(i));
    provs.push_back(provenance_of(*r));
    for (auto it = provs.back().begin(); provs.back().is_object() && it != provs.back().end(); ++it)
      if (std::find(fields.begin(), fields.end(), it.key()) == fields.end()) fields.push_back(it.key());
  }
  for (const std::string& f : fields) {
    std::vector<std::string> row{f};
    for (const ordered_json& p : provs) row.push_back(p.is_object() && p.contains(f) ? json_cell_text(p[f]) : "");
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::vector<std::string> sweep_meta(const SweepFolder& s) {
  const size_t done = static_cast<size_t>(
      std::count_if(s.points.begin(), s.points.end(), [](const ReportPoint& p) { return status_of(p) == "done"; }));
  std::string keys;
  for (const auto& k : s.keys) keys += (keys.empty() ? "" : ", ") + k;
  return {std::to_string(s.points.size()) + " points, " + std::to_string(done) + " done", "swept " + keys,
          "folder " + s.dir.string()};
}

std::vector<std::string> sweep_notes(const SweepFolder& s) {
  std::vector<std::string> notes = s.contents.problems;
  if (!s.from_manifest)
    notes.push_back(s.dir.string() +
                    " has no sweep.json (a sweep run before lminf wrote one): the points are its "
                    "sub-folders with a config.yaml, and the swept keys those whose values differ between them");
  for (size_t i = 0; i < s.points.size(); ++i)
    if (s.points[i].run)
      for (const auto& p : s.points[i].run->contents.problems) notes.push_back(point_label(i) + ": " + p);
  return notes;
}

}  // namespace

std::string sweep_page_html(const SweepFolder& s, const std::string& footer) {
  std::vector<PageSection> sec;
  sec.push_back({"sweep", "Sweep", "<h2>Sweep</h2>" + render_table(sweep_table(s))});
  const std::string across = records_across_points(s);
  if (!across.empty())
    sec.push_back({"records-across", "Results by point",
                   "<h2>Results by point</h2><p class=\"lead\">Every table of "
                   "records in the points' results.json, joined with the points' overrides.</p>" +
                       across});
  std::vector<FigureItem> figs = figure_items(s.analysis.contents, "overlay of the points");
  for (const FigureItem& f : figure_items(s.contents, "")) figs.push_back(f);
  for (size_t i = 0; i < s.points.size(); ++i) {
    if (!s.points[i].run) continue;
    const std::string prefix = point_label(i) + " " + s.points[i].name;
    for (const FigureItem& f : figure_items(s.points[i].run->contents, prefix)) figs.push_back(f);
    for (const FigureItem& f : figure_items(s.points[i].run->analysis.contents, prefix)) figs.push_back(f);
  }
  for (PageSection& f : figure_sections(figs)) sec.push_back(std::move(f));
  if (s.analysis.summary || !s.analysis.note.empty())
    sec.push_back({"analysis", "Factor summaries",
                   "<h2>Factor and NLL summaries</h2><p class=\"lead\">lminf analyze "
                   "over every point: " +
                       html_escape(s.analysis.dir.string()) + "/summary.json</p>" + analysis_html(s.analysis)});
  std::string points;
  for (size_t i = 0; i < s.points.size(); ++i) points += point_html(s, i);
  sec.push_back({"points", "Points",
                 "<h2>Points</h2><p class=\"lead\">Each point's results, records, outputs, "
                 "provenance and config.yaml.</p>" +
                     points});
  sec.push_back({"outputs", "Outputs", "<h2>Outputs</h2>" + outputs_html(s.contents, {"sweep.csv"})});
  sec.push_back({"provenance", "Provenance", "<h2>Provenance</h2>" + render_table(provenance_table(s))});
  std::string name = "sweep";
  for (const ReportPoint& p : s.points)
    if (p.run) {
      name = "sweep " + run_name(*p.run);
      break;
    }
  return page_html(name, sweep_meta(s), sweep_notes(s), sec, footer);
}

}  // namespace lminf
