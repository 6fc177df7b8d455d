#include "analysis/report/html/report_page.h"

#include <optional>

#include "analysis/report/html/html_table.h"
#include "analysis/report/html/html_text.h"
#include "analysis/report/html/json_view.h"

namespace lminf {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

std::string text_member(const std::optional<ordered_json>& j, const std::string& key) {
  if (!j || !j->is_object() || !j->contains(key) || !(*j)[key].is_string()) return "";
  return (*j)[key].get<std::string>();
}

}  // namespace

std::string run_name(const RunFolder& run) {
  const std::optional<ordered_json> prov =
      run.results ? std::optional<ordered_json>(provenance_of(*run.results)) : std::nullopt;
  if (!text_member(prov, "name").empty()) return text_member(prov, "name");
  try {
    for (const auto& [k, v] : flatten_yaml(run.config_text))
      if (k == "name" && !v.empty()) return v;
  } catch (const std::exception&) {
  }
  return fs::absolute(run.dir).lexically_normal().filename().string();
}

namespace {

std::vector<std::string> run_meta(const RunFolder& run) {
  const std::optional<ordered_json> prov =
      run.results ? std::optional<ordered_json>(provenance_of(*run.results)) : std::nullopt;
  std::vector<std::string> meta;
  if (!text_member(run.results, "task").empty()) meta.push_back("task " + text_member(run.results, "task"));
  if (!text_member(prov, "variant").empty()) meta.push_back("attention " + text_member(prov, "variant"));
  if (!text_member(prov, "model_type").empty()) meta.push_back("model " + text_member(prov, "model_type"));
  if (!text_member(prov, "created").empty()) meta.push_back("created " + text_member(prov, "created"));
  if (!text_member(prov, "git_revision").empty()) meta.push_back("git " + text_member(prov, "git_revision"));
  meta.push_back("folder " + run.dir.string());
  return meta;
}

}  // namespace

std::vector<PageSection> run_detail_sections(const RunFolder& run, const std::string& id) {
  std::vector<PageSection> s;
  const std::string records = records_html(run.contents);
  if (!records.empty()) s.push_back({id + "records", "Records", "<h2>Records</h2>" + records});
  s.push_back({id + "outputs", "Outputs", "<h2>Outputs</h2>" + outputs_html(run.contents)});
  const ordered_json prov = run.results ? provenance_of(*run.results) : ordered_json();
  s.push_back(
      {id + "provenance", "Provenance",
       "<h2>Provenance</h2>" + (prov.is_object() ? render_table(key_value_table(prov, "results.json provenance"))
                                                 : "<p class=\"lead\">results.json records no provenance.</p>")});
  s.push_back({id + "config", "Configuration",
               "<h2>Configuration</h2><p class=\"lead\">config.yaml: the resolved experiment (feed it back to lminf "
               "run to repeat the run).</p>" +
                   config_html(run.config_text)});
  return s;
}

std::string run_page_html(const RunFolder& run, const std::string& footer) {
  std::vector<PageSection> s;
  if (run.results)
    s.push_back(
        {"results", "Results", "<h2>Results</h2><p class=\"lead\">results.json</p>" + results_html(*run.results, 3)});
  std::vector<FigureItem> figs = figure_items(run.contents, "");
  for (const FigureItem& f : figure_items(run.analysis.contents, "")) figs.push_back(f);
  for (PageSection& f : figure_sections(figs)) s.push_back(std::move(f));
  if (run.analysis.summary || !run.analysis.note.empty())
    s.push_back({"analysis", "Factor summaries",
                 "<h2>Factor and NLL summaries</h2><p class=\"lead\">lminf analyze: " +
                     html_escape(run.analysis.dir.string()) + "/summary.json</p>" + analysis_html(run.analysis)});
  for (PageSection& d : run_detail_sections(run, "")) s.push_back(std::move(d));
  std::vector<std::string> notes = run.contents.problems;
  for (const auto& p : run.analysis.contents.problems) notes.push_back(p);
  return page_html(run_name(run), run_meta(run), notes, s, footer);
}

}  // namespace lminf
