// The pieces of a report page, each a block of HTML built from what report_folder.h read: figures
// (embedded as data URIs), results, records, tables, outputs, provenance, configuration.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/report/html/report_folder.h"

namespace lminf {

// One section of the page: its anchor, its title in the table of contents, its HTML.
struct PageSection {
  std::string id;
  std::string title;
  std::string html;
};

// A figure to show, with a caption prefix (the sweep point it belongs to, or "").
struct FigureItem {
  const Figure* figure;
  std::string caption_prefix;
};

// Every figure of a folder, captioned with `caption_prefix`.
std::vector<FigureItem> figure_items(const FolderContents& c, const std::string& caption_prefix);

// The kinds of figures, in page order: NLL by position, heat maps, factor 1, 2, 3, other figures.
// Each kind is one section (id, title, a line of explanation) holding the figures whose file stem
// matches it (nll*, *heatmap*, factor1*, factor2*, factor3*, anything else).
std::vector<PageSection> figure_sections(const std::vector<FigureItem>& figures);

// One figure: its image embedded (SVG as data:image/svg+xml, PNG as data:image/png, both base64, so
// no markup or script of a file reaches the page), captioned with its file name.
std::string figure_html(const FigureItem& item);

// results.json rendered generically (json_view.h), provenance and schema left to their sections.
std::string results_html(const nlohmann::ordered_json& results, int level);

// `lminf analyze`'s summary.json and its small tables (collapsed), and the note about the analysis.
std::string analysis_html(const AnalysisFolder& analysis);

// The first records of each JSON-lines file, collapsed, with the file's record count.
std::string records_html(const FolderContents& c);

// HDF5 outputs (schema, version, top-level objects), CSV tables (collapsed), every file with its size
// (the problems met while reading the folder are the page's notes). `skip_csv`: CSV files not to show as tables.
std::string outputs_html(const FolderContents& c, const std::vector<std::string>& skip_csv = {});

// The provenance object of results.json without its config text (shown in its own section).
nlohmann::ordered_json provenance_of(const nlohmann::ordered_json& results);

// config.yaml as preformatted text.
std::string config_html(const std::string& config_text);

// Notes (warnings) as highlighted paragraphs.
std::string notes_html(const std::vector<std::string>& notes);

// The HTML document: header (title, meta line), table of contents, the sections, footer.
std::string page_html(const std::string& title, const std::vector<std::string>& meta,
                      const std::vector<std::string>& notes, const std::vector<PageSection>& sections,
                      const std::string& footer);

}  // namespace lminf
