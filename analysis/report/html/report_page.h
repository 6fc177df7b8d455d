// The two pages of `lminf report`: a run's and a sweep's (report_sections.h builds their pieces).
#pragma once

#include <string>
#include <vector>

#include "analysis/report/html/report_sections.h"
#include "analysis/report/html/sweep_folder.h"

namespace lminf {

// A run: results, figures by kind, factor summaries, records, outputs, provenance, configuration.
std::string run_page_html(const RunFolder& run, const std::string& footer);

// A sweep: the sweep table (one row per point, the overrides as columns, then the scalar results),
// every records table of the points joined with the points' overrides, the overlay figures and each
// point's own, the overlay's summaries, one collapsible part per point, outputs, provenance.
std::string sweep_page_html(const SweepFolder& sweep, const std::string& footer);

// The run's name: provenance.name, else config.yaml's name, else the folder's name.
std::string run_name(const RunFolder& run);

// A run's records, outputs, provenance and configuration as sections; ids start with `id_prefix`.
std::vector<PageSection> run_detail_sections(const RunFolder& run, const std::string& id_prefix);

}  // namespace lminf
