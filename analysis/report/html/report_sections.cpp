#include "analysis/report/html/report_sections.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "analysis/report/html/html_table.h"
#include "analysis/report/html/html_text.h"
#include "analysis/report/html/json_view.h"
#include "analysis/report/html/report_assets.h"

namespace lminf {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

struct FigureKind {
  const char* id;
  const char* title;
  const char* lead;
  bool (*matches)(const std::string& stem);
};

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

const std::vector<FigureKind>& figure_kinds() {
  static const std::vector<FigureKind> kinds = {
      {"nll", "NLL by position",
       "Negative log-likelihood against token position (lminf analyze: nll.csv, EMA-smoothed).",
       [](const std::string& s) { return starts(s, "nll"); }},
      {"heatmaps", "Heat maps",
       "Drawn by the task at the end of the run (e.g. passkey: accuracy per prompt length and needle depth).",
       [](const std::string& s) { return s.find("heatmap") != std::string::npos; }},
      {"factor1", "Factor 1: attention logits against distance",
       "The running-max logit bound per distance, one panel per layer (docs/analysis.md).",
       [](const std::string& s) { return starts(s, "factor1"); }},
      {"factor2", "Factor 2: attention entropy against position",
       "Mean attention entropy per position, with the log(visible keys) ceiling dashed.",
       [](const std::string& s) { return starts(s, "factor2"); }},
      {"factor3", "Factor 3: the first tokens in feature space",
       "2-D PCA of sampled features, coloured by position, the first tokens circled.",
       [](const std::string& s) { return starts(s, "factor3"); }},
      {"figures", "Other figures", "Every other PNG/SVG found in the folder.", [](const std::string&) { return true; }},
  };
  return kinds;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string details(const std::string& summary, const std::string& body) {
  return "<details><summary>" + html_escape(summary) + "</summary>" + body + "</details>";
}

}  // namespace

std::string figure_html(const FigureItem& item) {
  const fs::path& p = item.figure->path;
  const bool svg = p.extension() == ".svg";
  const std::string uri = data_uri(svg ? "image/svg+xml" : "image/png", read_bytes(p));
  std::string caption = item.caption_prefix.empty() ? "" : item.caption_prefix + ": ";
  caption +=
      p.parent_path().filename().string() == "analysis" ? "analysis/" + p.filename().string() : p.filename().string();
  std::string also;
  for (const auto& ext : item.figure->also) also += (also.empty() ? " (also ." : ", .") + ext;
  if (!also.empty()) also += ")";
  return "<figure class=\"fig\"><img src=\"" + uri + "\" alt=\"" + html_escape(p.filename().string()) +
         "\"><figcaption>" + html_escape(caption + also) + "</figcaption></figure>";
}

std::vector<FigureItem> figure_items(const FolderContents& c, const std::string& caption_prefix) {
  std::vector<FigureItem> out;
  for (const Figure& f : c.figures) out.push_back({&f, caption_prefix});
  return out;
}

std::vector<PageSection> figure_sections(const std::vector<FigureItem>& figures) {
  std::vector<PageSection> out;
  std::vector<bool> used(figures.size(), false);
  for (const FigureKind& kind : figure_kinds()) {
    std::string grid;
    for (size_t i = 0; i < figures.size(); ++i) {
      if (used[i] || !kind.matches(figures[i].figure->path.stem().string())) continue;
      used[i] = true;
      grid += figure_html(figures[i]);
    }
    if (grid.empty()) continue;
    out.push_back({kind.id, kind.title,
                   "<h2>" + html_escape(kind.title) + "</h2><p class=\"lead\">" + html_escape(kind.lead) +
                       "</p><div class=\"grid\">" + grid + "</div>"});
  }
  return out;
}

std::string results_html(const ordered_json& results, int level) {
  if (!results.is_object()) return render_table(key_value_table({{"results.json", results}}, ""));
  return render_json_object(results, "", level, {"provenance", "schema", "schema_version"});
}

std::string analysis_html(const AnalysisFolder& analysis) {
  std::string h;
  if (!analysis.note.empty()) h += notes_html({analysis.note});
  if (analysis.summary && analysis.summary->is_object())
    h += render_json_object(*analysis.summary, "", 3, {"schema", "schema_version"});
  std::string tables;
  for (const CsvFile& c : analysis.contents.csvs)
    if (c.table)
      tables += details(c.name + " (" + std::to_string(c.rows) + " rows)",
                        render_table(HtmlTable{c.name, c.table->columns, c.table->rows, {}}));
  if (!tables.empty()) h += "<h3>Tables</h3>" + tables;
  return h;
}

std::string records_html(const FolderContents& c) {
  std::string h;
  for (const RecordsFile& r : c.records) {
    const std::string what = r.name + ": " + std::to_string(r.count) + " records" +
                             (r.count > static_cast<int64_t>(r.preview.size())
                                  ? " (the first " + std::to_string(r.preview.size()) + " shown)"
                                  : "");
    h += details(what, render_table(records_table(flatten_records(r.preview), "")));
  }
  return h;
}

std::string outputs_html(const FolderContents& c, const std::vector<std::string>& skip_csv) {
  std::string h;
  if (!c.h5.empty()) {
    HtmlTable t{"HDF5 outputs", {"file", "schema", "version", "lminf analyze", "objects", "note"}, {}, {}};
    for (const H5File& f : c.h5) {
      std::string objects;
      for (const auto& o : f.objects) objects += (objects.empty() ? "" : "; ") + o;
      t.rows.push_back({f.name, f.schema, f.schema_version ? std::to_string(f.schema_version) : "",
                        f.analyze_input ? "reads it" : "-", objects, f.analyze_input ? "" : f.problem});
    }
    h += render_table(t);
  }
  for (const CsvFile& f : c.csvs)
    if (f.table && std::find(skip_csv.begin(), skip_csv.end(), f.name) == skip_csv.end())
      h += details(f.name + " (" + std::to_string(f.rows) + " rows)",
                   render_table(HtmlTable{f.name, f.table->columns, f.table->rows, {}}));
  HtmlTable files{"files", {"file", "bytes"}, {}, {}};
  for (const FolderFile& f : c.files) files.rows.push_back({f.name, std::to_string(f.bytes)});
  return "<p class=\"lead\">" + html_escape(c.dir.string()) + "</p>" + h + render_table(files);
}

ordered_json provenance_of(const ordered_json& results) {
  if (!results.is_object() || !results.contains("provenance") || !results["provenance"].is_object()) return {};
  ordered_json p = results["provenance"];
  p.erase("config");
  return p;
}

std::string config_html(const std::string& config_text) {
  if (config_text.empty()) return "<p class=\"lead\">No config.yaml in the folder.</p>";
  return "<pre class=\"config\">" + html_escape(config_text) + "</pre>";
}

std::string notes_html(const std::vector<std::string>& notes) {
  std::string h;
  for (const auto& n : notes) h += "<p class=\"note\">" + html_escape(n) + "</p>";
  return h.empty() ? "" : "<div class=\"notes\">" + h + "</div>";
}

std::string page_html(const std::string& title, const std::vector<std::string>& meta,
                      const std::vector<std::string>& notes, const std::vector<PageSection>& sections,
                      const std::string& footer) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
      "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
      "<title>" +
      html_escape(title) + "</title><style>" + report_css() + "</style></head><body>";
  h += "<header class=\"top\"><h1>" + html_escape(title) + "</h1><div class=\"meta\">";
  for (const auto& m : meta) h += "<span>" + html_escape(m) + "</span>";
  h += "</div></header><nav class=\"toc\">";
  for (const auto& s : sections) h += "<a href=\"#" + html_escape(s.id) + "\">" + html_escape(s.title) + "</a>";
  h += "</nav><main>" + notes_html(notes);
  for (const auto& s : sections)
    h += "<section class=\"card\" id=\"" + html_escape(s.id) + "\">" + s.html + "</section>";
  h += "</main><footer>" + html_escape(footer) + "</footer><script>" + report_js() + "</script></body></html>\n";
  return h;
}

}  // namespace lminf
