// The report page's own style sheet and script, inlined into every page (no network, no CDN).
#pragma once

namespace lminf {

// CSS: a readable single column, figure grids, sticky-header tables with right-aligned numbers.
const char* report_css();

// JavaScript: click a table header to sort its rows (numerically for numeric columns, missing values
// last; click again to reverse); click a figure to widen it.
const char* report_js();

}  // namespace lminf
